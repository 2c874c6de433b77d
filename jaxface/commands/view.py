"""``jaxface view``: a self-contained HTML page that plays the sequences of an output folder.

Examples::

    jaxface generate --expression mouth_open --samples 3 --out out/
    jaxface view out/            # writes out/viewer.html; open it in any browser

The page (:mod:`jaxface.viz.viewer`) holds its mesh data, so it works offline and can be sent
as one file. It plays the folder's ``.glb`` files (as ``jaxface generate`` writes them), or, when
there are none, its folders of ``frame_*.ply`` / ``frame_*.obj`` meshes at ``--fps``; play/pause,
a frame slider, a sample selector, a heat map of the displacement from the first frame (colour
bar in mm) and mouse-drag orbit. URL parameters set the initial state, e.g.
``viewer.html?sample=1&frame=12&heat=1``. A folder without sequences is refused on one line.
"""

from __future__ import annotations

import argparse
import time

from jaxface.commands.parsers import add_parser

__all__ = ["register", "run"]


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from err
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Adds the ``view`` sub-command to ``subparsers`` and returns its parser."""
    parser = add_parser(
        subparsers, "view",
        "write OUT_DIR/viewer.html, a page that plays the folder's sequences", __doc__,
    )
    parser.add_argument("folder", metavar="OUT_DIR",
                        help="folder of .glb files or of frame_*.ply / frame_*.obj folders")
    parser.add_argument("--fps", type=_positive, default=30.0,
                        help="frame rate of sequences read from mesh files (default 30; .glb "
                        "files carry their own)")
    parser.add_argument("--title", default=None, help="page title (default: the folder's name)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Writes the viewer page for ``args.folder``. Returns 0."""
    from jaxface.commands.errors import UserError
    from jaxface.viz.viewer import write_viewer

    t0 = time.perf_counter()
    try:
        path = write_viewer(args.folder, fps=args.fps, title=args.title)
    except FileNotFoundError as err:
        raise UserError(str(err)) from None
    print(f"wrote {path} in {time.perf_counter() - t0:.1f} s")
    return 0
