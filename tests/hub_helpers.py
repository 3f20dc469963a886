"""Shared test helpers: load a Hub folder in a fresh Python process by either route."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_SCRIPT = """
import json, sys, torch
{prelude}
from transformers import AutoModel
model = AutoModel.from_pretrained({folder!r}{extra})
x = torch.load({inputs!r}, weights_only=True)
out = model(x, generator=torch.Generator().manual_seed(0))
print(json.dumps({{"class": type(model).__module__ + "." + type(model).__name__,
                  "loss": out.loss.item(),
                  "state": {{k: v.double().sum().item() for k, v in model.state_dict().items()}}}}))
"""


def load_in_subprocess(folder, inputs_file, route, tmp_path):
    """route 'native': `import vaezoo` then AutoModel; route 'remote': vaezoo NOT importable,
    trust_remote_code=True. Returns the child's JSON report."""
    if route == "native":
        prelude, extra = "import vaezoo", ""
        env_path = str(REPO)
    else:
        prelude = textwrap.dedent(
            """
            try:
                import vaezoo
                raise SystemExit("vaezoo must not be importable in this check")
            except ImportError:
                pass
            """
        )
        extra, env_path = ", trust_remote_code=True", ""
    code = _SCRIPT.format(prelude=prelude, folder=str(folder), extra=extra, inputs=str(inputs_file))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", PYTHONPATH=env_path, HF_MODULES_CACHE=str(tmp_path / "modules"))
    # -S would drop site-packages (torch); instead run from an empty cwd and hide the editable
    # install of vaezoo by blocking its import through a sitecustomize-free meta path check above.
    args = [sys.executable, "-c", code] if route == "native" else [sys.executable, "-c", _hide_vaezoo() + code]
    result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _hide_vaezoo():
    """Make `import vaezoo` fail in the child even though it is pip-installed (editable) here."""
    return textwrap.dedent(
        """
        import sys
        class _Block:
            def find_spec(self, name, path=None, target=None):
                if name == "vaezoo" or name.startswith("vaezoo."):
                    raise ImportError("vaezoo hidden for the trust_remote_code check")
        sys.meta_path.insert(0, _Block())
        sys.path[:] = [p for p in sys.path if "vaezoo" not in p and p not in ("", ".")]
        """
    )


def state_summary(model):
    return {k: v.double().sum().item() for k, v in model.state_dict().items()}


def read_config(folder):
    return json.loads((Path(folder) / "config.json").read_text())
