"""Visualisation: a small numpy mesh rasteriser, contact sheets and PNG output."""

from jaxface.viz.render import (
    Camera,
    add_colorbar,
    add_title,
    contact_sheet,
    draw_points,
    fit_camera,
    project_points,
    render_mesh,
    save_png,
    vertex_normals,
)

__all__ = [
    "Camera",
    "add_colorbar",
    "add_title",
    "contact_sheet",
    "draw_points",
    "fit_camera",
    "project_points",
    "render_mesh",
    "save_png",
    "vertex_normals",
]
