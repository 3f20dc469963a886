"""The ``vaezoo`` command line: evaluate, show, (re)build cards, push, list the zoo, sync the README table."""

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

    if args.repo_id and len(args.model) > 1:
        raise ValueError("--repo-id names one repository: give one MODEL_DIR with it")
    for name in args.model:
        folder = Path(resolve_model(name))
        write_card(folder, repo_id=args.repo_id)
        print(f"wrote {folder / 'README.md'} and its figures")


def cmd_push(args):
    from .push import push

    plan = push(args.model, args.repo_id, private=args.private, dry_run=args.dry_run)
    if args.dry_run:
        print(plan.describe())
        print("card and files checked; nothing was uploaded (--dry-run)")
    else:
        print(f"pushed {len(plan.files)} files to https://huggingface.co/{plan.repo_id}")


def cmd_list(args):
    from .zoo import zoo_entries, zoo_listing

    print(zoo_listing(zoo_entries(args.root)))


def cmd_zoo_table(args):
    from .zoo import readme_with_table

    current, expected = readme_with_table(args.readme, args.root)
    if args.check:
        if current != expected:
            raise ValueError(f"the zoo table in {args.readme} does not match the cards under {args.root}/; "
                             "regenerate it with `vaezoo zoo-table`")
        print(f"{args.readme} zoo table matches the cards under {args.root}/")
    elif current != expected:
        Path(args.readme).write_text(expected)
        print(f"updated the zoo table in {args.readme}")
    else:
        print(f"{args.readme} zoo table already up to date")


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

    card = sub.add_parser("card", help="regenerate folders' README.md cards and figures from their saved results")
    card.add_argument("model", nargs="+", help="Hub folder(s) or zoo entry name(s); e.g. model_cards/* to refresh "
                      "every card's R-D plot after adding a checkpoint")
    card.add_argument("--repo-id", help="Hub repository the card's usage loads (default: the recipe's hub_repo)")
    card.set_defaults(func=cmd_card)

    push = sub.add_parser("push", help="check a Hub folder and upload it with HfApi.create_repo + upload_folder")
    push.add_argument("model", help="the Hub folder, e.g. model_cards/NAME")
    push.add_argument("--repo-id", required=True, help="ORG/NAME on the Hugging Face Hub")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    push.add_argument("--dry-run", action="store_true", help="check the folder and card, list what would be uploaded")
    push.set_defaults(func=cmd_push)

    ls = sub.add_parser("list", help="print the zoo: name, family, parameterization/estimator, dataset, metrics, size")
    ls.add_argument("--root", default="model_cards", help="folder holding one Hub folder per checkpoint")
    ls.set_defaults(func=cmd_list)

    table = sub.add_parser("zoo-table", help="regenerate (or --check) the README zoo table from the cards")
    table.add_argument("--readme", default="README.md")
    table.add_argument("--root", default="model_cards")
    table.add_argument("--check", action="store_true", help="fail if the README table differs from the cards")
    table.set_defaults(func=cmd_zoo_table)
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
