"""``jaxface mesh-info``: summarise a template mesh and build (or load) its topology.

Example::

    jaxface mesh-info template.ply --factors 4 4 4 4 --rings 2 2 1 1 1 \\
        --dilation 2 2 1 1 1 --reference-vertices 3567 4051 4597 --out topology.npz

prints the vertex and face counts, connected components, boundary loops, the
hierarchy's level sizes, the spiral length of every level and the cache file; ``--out``
also writes the hierarchy and spirals to an ``.npz`` (see
:func:`jaxface.mesh.cache.save_topology`). Bad input is reported on one line; a template too
small for the ``--factors`` is refused with the factors that fit it.
"""

from __future__ import annotations

import argparse
import math
import warnings

from jaxface.commands.parsers import add_parser

__all__ = ["level_sizes", "register", "run", "suggest_factors"]


def _length(text: str) -> int | None:
    if text.lower() == "auto":
        return None
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'auto', got {text!r}") from err
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from err
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def register(subparsers) -> argparse.ArgumentParser:
    """Adds the ``mesh-info`` parser to the ``jaxface`` sub-command parsers."""
    parser = add_parser(subparsers, "mesh-info",
                        "summarise a template mesh and build its hierarchy and spirals", __doc__)
    parser.add_argument("mesh", help="template mesh (.ply or .obj)")
    parser.add_argument("--factors", type=float, nargs="+", default=[4, 4, 4, 4],
                        help="decimation factor per level step (default: 4 4 4 4)")
    parser.add_argument("--order", choices=("neural3dmm", "spiralnet"), default="neural3dmm",
                        help="spiral ordering (default: neural3dmm)")
    parser.add_argument("--spiral-length", type=_length, nargs="+", default=None,
                        metavar="L", help="spiral length, one value or one per level; 'auto' "
                        "= data-driven (neural3dmm only; default auto, 9 for spiralnet)")
    parser.add_argument("--rings", type=_positive_int, nargs="+", default=None, metavar="K",
                        help="rings per spiral, one value or one per level (neural3dmm; "
                        "default 1)")
    parser.add_argument("--dilation", type=_positive_int, nargs="+", default=[1], metavar="D",
                        help="dilation, one value or one per level (default 1)")
    parser.add_argument("--reference-vertices", type=int, nargs="+", default=None,
                        metavar="V", help="level-0 reference vertices (default: one per "
                        "component, nearest its centroid)")
    parser.add_argument("--cache-dir", default=None,
                        help="cache folder (default: $JAXFACE_CACHE_DIR or ~/.cache/jaxface)")
    parser.add_argument("--out", default=None, help="also write the topology to this .npz")
    parser.set_defaults(func=run)
    return parser


def _broadcast(name: str, values, count: int) -> list:
    if values is None:
        return [None] * count
    if len(values) == 1:
        return list(values) * count
    if len(values) != count:
        raise ValueError(f"--{name} takes 1 value or {count} (one per level), got {len(values)}")
    return list(values)


def level_sizes(num_vertices: int, factors) -> list[int]:
    """The vertex counts the hierarchy aims for: ``ceil(n / factor)`` per step.

    Example:
      >>> level_sizes(42, [4, 4, 4, 4])
      [42, 11, 3, 1, 1]
    """
    sizes = [int(num_vertices)]
    for factor in factors:
        sizes.append(math.ceil(sizes[-1] / float(factor)))
    return sizes


def suggest_factors(vertices, faces, factors) -> list[list[float]]:
    """Factors close to ``factors`` that the template can be decimated with, best first.

    Tries the first steps of ``factors`` (fewer levels, same factors), then as many steps with
    smaller factors (3, then 2); returns those whose hierarchy builds.
    """
    from jaxface.mesh import build_hierarchy
    from jaxface.mesh.errors import MeshError

    candidates = [list(factors[:k]) for k in range(len(factors) - 1, 0, -1)]
    candidates += [[f] * len(factors) for f in (3.0, 2.0) if f < max(factors)]
    fits = []
    for candidate in candidates:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                build_hierarchy(vertices, faces, candidate)
        except MeshError:
            continue
        fits.append(candidate)
        if len(fits) == 2:
            break
    return fits


def _show(factors) -> str:
    return " ".join(f"{f:g}" for f in factors)


def run(args: argparse.Namespace) -> int:
    """Runs ``mesh-info``; raises ``MeshError``/``ValueError`` for bad input."""
    from jaxface.mesh import (
        boundary_loops,
        connected_components,
        load_or_build_topology,
        read_mesh,
        save_topology,
    )
    from jaxface.mesh.errors import MeshError

    vertices, faces = read_mesh(args.mesh)
    count = len(args.factors) + 1
    lengths = args.spiral_length
    if lengths is None and args.order == "spiralnet":
        lengths = [9]
    lengths = _broadcast("spiral-length", lengths, count)
    if args.order == "spiralnet" and None in lengths:
        raise ValueError("--order spiralnet needs explicit --spiral-length values")
    if args.order == "spiralnet" and args.rings is not None:
        raise ValueError("--rings applies to --order neural3dmm only")
    rings = _broadcast("rings", args.rings, count)
    dilations = _broadcast("dilation", args.dilation, count)

    components, _ = connected_components(faces, vertices.shape[0])
    loops = boundary_loops(faces)
    try:
        hierarchy, spirals, cache_path = load_or_build_topology(
            vertices, faces, factors=args.factors, spiral_lengths=lengths, rings=rings,
            dilations=dilations, reference_vertices=args.reference_vertices, order=args.order,
            cache_dir=args.cache_dir)
    except MeshError as err:
        if "decimat" not in str(err) and "cannot keep only" not in str(err):
            raise
        sizes = " -> ".join(str(n) for n in level_sizes(vertices.shape[0], args.factors))
        fits = suggest_factors(vertices, faces, args.factors)
        hint = ("; these fit: " + ", or ".join(
            f"--factors {_show(f)} ({' -> '.join(map(str, level_sizes(len(vertices), f)))})"
            for f in fits) if fits else "; the template is too small for a hierarchy")
        raise MeshError(f"the template's {vertices.shape[0]} vertices are too few for "
                        f"--factors {_show(args.factors)} (levels {sizes}): {err.detail}{hint}",
                        source=args.mesh) from err

    loop_sizes = ", ".join(str(loop.shape[0]) for loop in loops) or "none (closed)"
    print(f"mesh:            {args.mesh}")
    print(f"vertices:        {vertices.shape[0]}")
    print(f"faces:           {faces.shape[0]}")
    print(f"components:      {components}")
    print(f"boundary loops:  {len(loops)} (vertices per loop: {loop_sizes})")
    print(f"levels:          {' -> '.join(str(size) for size in hierarchy.sizes)}")
    face_counts = " -> ".join(str(level.faces.shape[0]) for level in hierarchy.levels)
    print(f"faces per level: {face_counts}")
    print(f"spiral order:    {args.order}")
    print(f"spiral lengths:  {' '.join(str(table.shape[1]) for table in spirals)}")
    print(f"cache:           {cache_path}")
    if args.out:
        save_topology(args.out, hierarchy, spirals,
                      meta={"mesh": args.mesh, "order": args.order,
                            "factors": [float(f) for f in args.factors]})
        print(f"written:         {args.out}")
    return 0
