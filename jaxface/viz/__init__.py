"""Visualisation: a small numpy mesh rasteriser, contact sheets, PNG output and an HTML viewer.

* :mod:`jaxface.viz.render`: the rasteriser, colour bars and contact sheets.
* :mod:`jaxface.viz.viewer`: a self-contained WebGL page that plays a folder's mesh sequences.
"""

from jaxface.viz.render import (
    Camera,
    add_colorbar,
    add_title,
    contact_sheet,
    draw_points,
    face_buffer,
    fit_camera,
    project_points,
    render_mesh,
    save_png,
    vertex_normals,
)
from jaxface.viz.viewer import ViewerSequence, find_sequences, viewer_html, write_viewer

__all__ = [
    "Camera",
    "ViewerSequence",
    "add_colorbar",
    "add_title",
    "contact_sheet",
    "draw_points",
    "face_buffer",
    "find_sequences",
    "fit_camera",
    "project_points",
    "render_mesh",
    "save_png",
    "vertex_normals",
    "viewer_html",
    "write_viewer",
]
