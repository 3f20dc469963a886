"""The ``vaezoo`` command line: evaluate, show and (re)build cards for zoo checkpoints."""

import argparse
import json
import sys
from pathlib import Path


def resolve_model(name):
    """A local folder, a zoo entry under model_cards/, or a Hub id (passed to from_pretrained)."""
    path = Path(name)
    if path.is_dir():
        return str(path)
    zoo = Path("model_cards") / name
    return str(zoo) if zoo.is_dir() else name


def load_model(name):
    """Safetensors only, zoo model types only, no remote code (see ``vaezoo.loading``)."""
    from .loading import load_pretrained

    return load_pretrained(resolve_model(name))


def cmd_evaluate(args):
    from .data import load_images
    from .evaluation import evaluate

    model = load_model(args.model)
    data = load_images(args.dataset, args.split, limit=args.limit)
    results = evaluate(
        model,
        data,
        iwae_samples=args.iwae_samples,
        num_samples=args.num_samples,
        seed=args.seed,
        batch_size=args.batch_size,
        fgsm_eps=args.fgsm_eps,
        progress=not args.json,
    )
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key:>16}: {value:.4f}" if isinstance(value, float) else f"{key:>16}: {value}")


def cmd_show(args):
    """Reload a Hub folder with AutoModel and print its card's metrics."""
    from huggingface_hub import ModelCard

    folder = Path(resolve_model(args.model))
    model = load_model(str(folder))
    card = ModelCard.load(folder / "README.md")
    print(f"{folder.name}: {type(model).__name__}, {sum(p.numel() for p in model.parameters()):,} parameters")
    for index in card.data.eval_results or []:
        print(f"  {index.dataset_name}/{index.dataset_split}  {index.metric_name}: {index.metric_value}")


def cmd_card(args):
    from .cards import write_card

    write_card(resolve_model(args.model))
    print(f"wrote {Path(resolve_model(args.model)) / 'README.md'}")


def build_parser():
    parser = argparse.ArgumentParser(prog="vaezoo", description="Pretrained variational models on the Hugging Face Hub.")
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("evaluate", help="importance-weighted NLL, ELBO, rate, distortion (or accuracy/NLL/ECE)")
    ev.add_argument("model", help="Hub folder, zoo entry name (model_cards/NAME) or Hub id")
    ev.add_argument("--dataset", required=True, help="dataset name, e.g. static-binarized-mnist")
    ev.add_argument("--split", default="test")
    ev.add_argument("--iwae-samples", type=int, default=5000, help="K importance samples per example")
    ev.add_argument("--num-samples", type=int, default=12, help="posterior samples per prediction (classifiers)")
    ev.add_argument("--fgsm-eps", type=float, nargs="*", default=[], help="FGSM error at these eps (classifiers)")
    ev.add_argument("--limit", type=int, help="evaluate the first N examples only")
    ev.add_argument("--batch-size", type=int)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(func=cmd_evaluate)

    show = sub.add_parser("show", help="reload a Hub folder with AutoModel and print its card metrics")
    show.add_argument("model")
    show.set_defaults(func=cmd_show)

    card = sub.add_parser("card", help="regenerate a folder's README.md card and figures from its saved results")
    card.add_argument("model")
    card.set_defaults(func=cmd_card)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, OSError, RuntimeError) as err:
        print(f"vaezoo {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
