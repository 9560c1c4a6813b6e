"""The ``lmm-teach`` command line.

    lmm-teach fit FILE.csv --y Y --subject S --time T [--visit V] [--between B]
                  [--cluster C] [--random-slope] [--method reml|ml] [--df satterthwaite|kenward-roger]
                  [--format text|json]
    lmm-teach simulate [--preset NAME] [design options] --seed N [--out FILE]
    lmm-teach power [--preset NAME] [design options] --reps N --seed N [--analyses KEY[,KEY...]]
                    [--workers N | --scheduler ADDRESS] [--format text|json]

Every problem in the user's input ends with exit status 2 and one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line."""

    def error(self, message):  # noqa: D401 - argparse's hook
        raise _UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


class _UsageError(Exception):
    pass


def _design_options(parser: argparse.ArgumentParser) -> None:
    """One option per Design field: the field names are the public vocabulary."""
    from lmm_teach.design import FIELDS, PRESETS, Design

    parser.add_argument("--preset", choices=sorted(PRESETS), metavar="NAME",
                        help=("start from a named design: " + "; ".join(f"'{p}'" for p in sorted(PRESETS)))
                        .replace("%", "%%"))
    defaults = Design()
    for f in dataclasses.fields(Design):
        info = FIELDS.get(f.name)
        default = getattr(defaults, f.name)
        help_text = getattr(info, "label", f.name)
        description = getattr(info, "description", "")
        if description:
            help_text = f"{help_text}: {description}"
        help_text += f" (default {default!r})"
        help_text = help_text.replace("%", "%%")  # argparse formats help with %
        opt = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(opt, dest=f.name, type=_bool, metavar="yes|no", help=help_text)
        elif isinstance(default, tuple):
            parser.add_argument(opt, dest=f.name, type=_floats, metavar="T0,T1,...", help=help_text)
        elif isinstance(default, int):
            parser.add_argument(opt, dest=f.name, type=int, help=help_text)
        elif isinstance(default, float):
            parser.add_argument(opt, dest=f.name, type=float, help=help_text)
        else:
            parser.add_argument(opt, dest=f.name, type=str, help=help_text)


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("yes", "true", "1", "on"):
        return True
    if value in ("no", "false", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.replace(";", ",").split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _structures(text: str) -> tuple[str, ...]:
    from lmm_teach.mmrm.structures import STRUCTURES

    names = tuple(dict.fromkeys(v.strip().lower() for v in text.split(",") if v.strip()))
    bad = [n for n in names if n not in STRUCTURES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown covariance structure {', '.join(bad) or text!r}: choose from "
                                         + ", ".join(STRUCTURES))
    return names


def _method_keys() -> tuple[str, ...]:
    from lmm_teach.methods import METHODS

    return tuple(METHODS)


def _analyses(text: str) -> tuple[str, ...]:
    """``--analyses lmm,mmrm``: method keys of the registry, checked."""
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    known = _method_keys()
    unknown = [k for k in keys if k not in known]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(
            (f"unknown method {unknown[0]!r}" if unknown else "no method given") + f"; choose among {', '.join(known)}")
    return keys


def _design_from(ns: argparse.Namespace):
    from lmm_teach.design import PRESETS, Design
    from lmm_teach.validate import DataError

    base = PRESETS[ns.preset] if ns.preset else Design()
    changes = {f.name: getattr(ns, f.name) for f in dataclasses.fields(Design)
               if getattr(ns, f.name, None) is not None}
    try:
        return dataclasses.replace(base, **changes)
    except ValueError as exc:  # Design validates its values and names the field
        raise DataError(str(exc)) from None


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lmm-teach", description="Linear mixed models vs repeated-measures ANOVA, for teaching.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    fit = sub.add_parser("fit", help="fit the LMM and the RM-ANOVA to a CSV file and compare them",
                         description="Fit the LMM (numeric time), the LMM with categorical time and the "
                                     "RM-ANOVA to a long CSV file (one row per measurement).")
    fit.add_argument("file", metavar="FILE.csv")
    fit.add_argument("--y", required=True, help="column of the outcome")
    fit.add_argument("--subject", required=True, help="column of the subject id")
    fit.add_argument("--time", required=True, help="column of the numeric time")
    fit.add_argument("--visit", help="column of the visit label (the ANOVA's within factor; default: --time)")
    fit.add_argument("--between", help="column of a between-subject factor (e.g. the treatment arm)")
    fit.add_argument("--cluster", help="column of a level above subject (e.g. clinic)")
    fit.add_argument("--random-slope", action="store_true", help="give every subject its own slope")
    fit.add_argument("--method", choices=["reml", "ml"], default="reml", type=str.lower)
    fit.add_argument("--df", choices=["satterthwaite", "kenward-roger"], default="satterthwaite", type=str.lower,
                     help="small-sample method of the fixed-effect tests, of the LMM and of the MMRM "
                          "(default satterthwaite; kenward-roger needs --method reml)")
    fit.add_argument("--format", choices=["text", "json"], default="text")
    fit.add_argument("--mmrm", metavar="COV[,COV...]", type=_structures,
                     help="also fit the MMRM (categorical visit [x between], no random effects) with these residual "
                          "covariance structures: us, toep, toeph, ar1, ar1h, cs, csh, ad, adh, sp_exp")

    sim = sub.add_parser("simulate", help="simulate a repeated-measures dataset and write it as CSV",
                         description="Simulate a study from a design and write the long data as CSV.")
    _design_options(sim)
    sim.add_argument("--seed", type=int, default=None, help="random seed (same seed, same data)")
    sim.add_argument("--out", help="file to write (default: standard output)")

    power = sub.add_parser("power", help="Monte Carlo study: power, type-I error, bias and coverage",
                           description="Simulate many studies from a design, analyse each with the chosen "
                                       "methods and say what the study shows (power, bias and why, coverage).")
    _design_options(power)
    power.add_argument("--reps", type=int, default=500, help="number of simulated studies (default 500)")
    power.add_argument("--analyses", metavar="KEY[,KEY...]", type=_analyses, default=None,
                       help=f"methods to study, by key: {', '.join(_method_keys())} (default: all but mmrm, "
                            "whose fit costs about as much per study as the others' together)")
    power.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    power.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    power.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    power.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run the replicates on a running dask cluster, e.g. tcp://10.0.0.5:8786 "
                            "(needs pip install 'lmm-teach[dask]'); same seed, same table as a local run")
    power.add_argument("--format", choices=["text", "json"], default="text")
    return parser


def _write(result, fmt: str, out) -> int:
    """A result as strict JSON (no NaN) or as its readable summary."""
    if fmt == "json":
        json.dump(result.to_dict(), out, indent=1, allow_nan=False)
        out.write("\n")
    else:
        out.write(result.summary() + "\n")
    return 0


def _fit(ns: argparse.Namespace, out) -> int:
    from lmm_teach.compare import analyze
    from lmm_teach.validate import read_csv

    if ns.df == "kenward-roger" and ns.method != "reml":
        raise _UsageError("lmm-teach fit: --df kenward-roger needs --method reml (Kenward-Roger's method is "
                          "defined for REML fits)")
    data = read_csv(ns.file)
    analysis = analyze(data, y=ns.y, subject=ns.subject, time=ns.time, visit=ns.visit, between=ns.between,
                       cluster=ns.cluster, random_slope=ns.random_slope, method=ns.method.upper(), df=ns.df)
    if not ns.mmrm:
        return _write(analysis, ns.format, out)
    mmrm = _fit_mmrm(data, ns)
    if ns.format == "json":
        result = analysis.to_dict()
        result["mmrm"] = {cov: (fit.to_dict() if not isinstance(fit, str) else {"error": fit})
                          for cov, fit in mmrm.items()}
        json.dump(result, out, indent=1, allow_nan=False)
        out.write("\n")
        return 0
    out.write(analysis.summary() + "\n")
    for cov, fit in mmrm.items():
        out.write("\n" + (fit.summary() if not isinstance(fit, str) else f"MMRM {cov}: {fit}") + "\n")
    return 0


def _fit_mmrm(data, ns) -> dict:
    """One MMRM per structure; a structure the data cannot support reports its reason instead."""
    from lmm_teach.mmrm import fit_mmrm
    from lmm_teach.validate import DataError

    if ns.cluster:
        raise DataError("the MMRM has no random effects, so it cannot model --cluster: leave out --cluster "
                        "or --mmrm")
    fits = {}
    for cov in ns.mmrm:
        try:
            fits[cov] = fit_mmrm(data, y=ns.y, subject=ns.subject, visit=ns.visit or ns.time, between=ns.between,
                                 time=ns.time, covariance=cov, df=ns.df, method=ns.method.upper())
        except DataError as exc:
            if len(ns.mmrm) == 1:
                raise
            fits[cov] = str(exc)
    return fits


def _simulate(ns: argparse.Namespace, out) -> int:
    from lmm_teach.simulate import simulate

    data = simulate(_design_from(ns), seed=ns.seed)
    if ns.out:
        data.to_csv(ns.out, index=False)
    else:
        data.to_csv(out, index=False)
    return 0


def _power(ns: argparse.Namespace, out) -> int:
    from lmm_teach.montecarlo import monte_carlo
    from lmm_teach.validate import DataError

    if ns.reps < 1:
        raise DataError("--reps must be at least 1")
    design = _design_from(ns)
    chosen = {"analyses": ns.analyses} if ns.analyses else {}
    if ns.scheduler is None:
        result = monte_carlo(design, n_reps=ns.reps, seed=ns.seed, alpha=ns.alpha, n_workers=ns.workers, **chosen)
        return _write(result, ns.format, out)
    if ns.workers is not None:
        raise DataError("give --workers or --scheduler, not both (the cluster's workers run the study)")
    with _dask_client(ns.scheduler) as client:
        result = monte_carlo(design, n_reps=ns.reps, seed=ns.seed, alpha=ns.alpha, executor=client.get_executor(),
                             **chosen)
    return _write(result, ns.format, out)


def _dask_client(address: str):
    """A ``distributed.Client`` connected to ``address`` (``DataError`` saying what to do if not)."""
    from lmm_teach.validate import DataError

    try:
        from distributed import Client
    except ImportError:
        raise DataError("--scheduler needs dask's distributed package: pip install 'lmm-teach[dask]'") from None
    try:
        return Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise DataError(f"cannot reach the dask scheduler at {address!r} ({type(exc).__name__}: {exc}); "
                        "start one (dask scheduler) or check the address") from None


def main(argv: Sequence[str] | None = None, *, stdout=None, stderr=None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input)."""
    from lmm_teach.validate import DataError

    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = _build_parser()
    try:
        ns = parser.parse_args(argv)
        if ns.command is None:
            parser.print_help(stdout)
            return EXIT_USAGE
        run = {"fit": _fit, "simulate": _simulate, "power": _power}[ns.command]
        return run(ns, stdout)
    except _UsageError as exc:
        stderr.write(f"{exc}\n")
    except DataError as exc:
        stderr.write(f"lmm-teach: {exc}\n")
    except OSError as exc:  # an unwritable --out file, a vanished input file
        stderr.write(f"lmm-teach: {exc.strerror or exc}: {exc.filename or ''}\n".replace(": \n", "\n"))
    except Exception as exc:  # a bug of ours: one line, and a way to see more
        if os.environ.get("LMM_TEACH_DEBUG"):
            raise
        stderr.write(f"lmm-teach: internal error ({type(exc).__name__}: {exc}); please report it "
                     "(set LMM_TEACH_DEBUG=1 to see the traceback)\n")
        return 1
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
