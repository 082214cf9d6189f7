"""Region passes (runs inside Blender): render per-frame pixel regions of a scene variant and compose
them with a base pass into full frames. ``marked: region`` uses it for the red paint; any later pass
that only changes the scene near the defect (e.g. the defect-free twin) can use it the same way.

Why the result equals a full render of the variant (measured, docs/performance.md):
- Cycles samples each pixel from its frame coordinates and the seed, so a border render cropped to a
  rectangle gives the same noisy radiance, albedo and normal, bit for bit, as the full render there
  (adaptive sampling included), with the 8-bit dither off (``render_settings.configure``).
- The denoiser (OIDN) is not local: it scales its input by the whole frame's exposure and its
  network sees far around each pixel, so denoising a crop gives different pixels everywhere in it.
  Crops are therefore rendered *noisy*, pasted into the base pass's noisy frame, and the whole frame
  is denoised by the compositor's Denoise node with the scene's settings, which reproduces Cycles'
  own denoised output bit for bit. Outside the region the composed frame then differs from the base
  frame only as much as the full variant render would (the denoiser spreads a change by 1-3 levels).

Use (``render_job.py``)::

    rp = RegionPass(scene, work_dir)          # after the scene, settings and mask pass are set up
    for i ...: render base frame i; rp.keep_base(i, rect_i)   # rect_i from pipeline.render.region
    ... change the scene to the variant (swap a material, a mesh) ...
    rp.begin()
    for i with rect_i: place the camera; rp.render(i, rect_i, dest_png)
    rp.end()
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Optional

import bpy
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: pipeline.render.region

from pipeline.render.region import Rect  # noqa: E402  (numpy-only module shared with the host)

PASSES = ("noisy", "albedo", "normal")   # what the denoiser reads; without denoising only "noisy"
_PREFIX = "regionpass_"
# Cycles' own denoiser settings → the compositor Denoise node's menu values.
_QUALITY = {"HIGH": "High", "BALANCED": "Balanced", "FAST": "Fast"}
_PREFILTER = {"NONE": "None", "FAST": "Fast", "ACCURATE": "Accurate"}


def set_pixel_border(scene: bpy.types.Scene, rect: Rect) -> None:
    """Render only ``rect`` (top-left origin, half-open pixels) and crop the result to it."""
    x0, y0, x1, y1 = rect
    w, h = scene.render.resolution_x, scene.render.resolution_y
    r = scene.render
    r.use_border, r.use_crop_to_border = True, True
    # Blender turns border * size into whole pixels in float32 (83/180 * 180 may come out as
    # 82.99998 and truncate to 82); a quarter-pixel offset lands on the intended pixel whether the
    # conversion truncates or rounds. Border y grows upwards.
    q = 0.25
    r.border_min_x, r.border_max_x = (x0 + q) / w, (x1 + q) / w
    r.border_min_y, r.border_max_y = (h - y1 + q) / h, (h - y0 + q) / h


def clear_border(scene: bpy.types.Scene) -> None:
    scene.render.use_border = False
    scene.render.use_crop_to_border = False


def _read_float(path: Path) -> np.ndarray:
    """A float image file as a top-down ``(H, W, 4)`` float32 array (no colour conversion)."""
    img = bpy.data.images.load(str(path), check_existing=False)
    try:
        w, h = img.size
        a = np.empty(w * h * 4, np.float32)
        img.pixels.foreach_get(a)
        return a.reshape(h, w, 4)[::-1]
    finally:
        bpy.data.images.remove(img)


def read_mask(path: Path) -> np.ndarray:
    """An 8-bit mask PNG (the exact defect mask) as a top-down boolean ``(H, W)`` array."""
    return _read_float(path)[..., 0] > 0.5


def _copy_color_management(src: bpy.types.Scene, dst: bpy.types.Scene) -> None:
    dst.display_settings.display_device = src.display_settings.display_device
    for k in ("view_transform", "look", "exposure", "gamma", "use_curve_mapping"):
        setattr(dst.view_settings, k, getattr(src.view_settings, k))
    s, d = src.render.image_settings, dst.render.image_settings
    d.file_format = s.file_format
    for k in ("color_mode", "color_depth", "compression"):
        setattr(d, k, getattr(s, k))
    for k in ("resolution_x", "resolution_y", "resolution_percentage", "dither_intensity"):
        setattr(dst.render, k, getattr(src.render, k))


class _Composer:
    """A compositor-only scene: float images (the pasted passes) → Denoise (if on) → the output PNG.
    It renders no view layer, so composing costs the denoiser and the PNG write only."""

    def __init__(self, src: bpy.types.Scene, denoise: Optional[tuple[str, str]]):
        self.scene = bpy.data.scenes.new("region_composer")
        _copy_color_management(src, self.scene)
        self.scene.render.engine = src.render.engine
        self.scene.render.use_compositing = True
        # OIDN on the same kind of device as Cycles' own denoiser (CPU and GPU OIDN differ slightly).
        cy = src.cycles
        self.scene.render.compositor_denoise_device = "GPU" if cy.device == "GPU" and cy.denoising_use_gpu else "CPU"
        for vl in self.scene.view_layers:
            vl.use = False
        w, h = src.render.resolution_x, src.render.resolution_y
        ng = bpy.data.node_groups.new("region_composer", "CompositorNodeTree")
        self.scene.compositing_node_group = ng
        names = PASSES if denoise else PASSES[:1]
        self.images: dict[str, bpy.types.Image] = {}
        nodes = {}
        for n in names:
            im = bpy.data.images.new(f"region_{n}", w, h, alpha=True, float_buffer=True)
            im.colorspace_settings.name = "Non-Color" if n == "normal" else "Linear Rec.709"
            node = ng.nodes.new("CompositorNodeImage")
            node.image = im
            self.images[n], nodes[n] = im, node
        ng.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        out = ng.nodes.new("NodeGroupOutput")
        if denoise:
            dn = ng.nodes.new("CompositorNodeDenoise")
            dn.inputs["Quality"].default_value = _QUALITY[denoise[0]]
            dn.inputs["Prefilter"].default_value = _PREFILTER[denoise[1]]
            dn.inputs["HDR"].default_value = True
            ng.links.new(nodes["noisy"].outputs["Image"], dn.inputs["Image"])
            ng.links.new(nodes["albedo"].outputs["Image"], dn.inputs["Albedo"])
            ng.links.new(nodes["normal"].outputs["Image"], dn.inputs["Normal"])
            ng.links.new(dn.outputs["Image"], out.inputs[0])
        else:
            ng.links.new(nodes["noisy"].outputs["Image"], out.inputs[0])

    def write(self, passes: dict[str, np.ndarray], dest: Path) -> None:
        for n, im in self.images.items():
            a = np.ascontiguousarray(passes[n][::-1], dtype=np.float32)
            a[..., 3] = 1.0
            im.pixels.foreach_set(a.ravel())
            im.update()
        self.scene.render.filepath = str(dest)
        bpy.ops.render.render(write_still=True, scene=self.scene.name)


class RegionPass:
    """Keeps the base pass's noisy frames where a region will be rendered, then renders the regions
    of the scene's current state and composes each with its base frame into a full frame.

    ``scene`` must be fully configured (Cycles settings, compositor tree if any) before this is
    created: the object adds a File Output node (float EXR, uncompressed) for the passes to the
    scene's compositor tree, creating a tree that passes the image through if there is none."""

    def __init__(self, scene: bpy.types.Scene, work: Path):
        self.scene = scene
        self.work = Path(work)
        self.tmp, self.base = self.work / "tmp", self.work / "base"
        for d in (self.tmp, self.base):
            d.mkdir(parents=True, exist_ok=True)
        cy = scene.cycles
        self.denoise = (cy.denoising_quality, cy.denoising_prefilter) if cy.use_denoising else None
        if self.denoise and cy.denoiser != "OPENIMAGEDENOISE":
            raise RuntimeError(f"region passes compose with OIDN; the scene denoises with {cy.denoiser}")
        self.names = PASSES if self.denoise else PASSES[:1]
        bpy.context.view_layer.cycles.denoising_store_passes = bool(self.denoise)
        ng = scene.compositing_node_group
        if ng is None:
            ng = bpy.data.node_groups.new("region_base", "CompositorNodeTree")
            scene.compositing_node_group = ng
            ng.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
            ng.links.new(ng.nodes.new("CompositorNodeRLayers").outputs["Image"], ng.nodes.new("NodeGroupOutput").inputs[0])
        scene.render.use_compositing = True
        self.tree = ng
        self.rl = next(n for n in ng.nodes if n.bl_idname == "CompositorNodeRLayers")
        fo = ng.nodes.new("CompositorNodeOutputFile")
        fo.format.media_type = "IMAGE"
        fo.format.file_format = "OPEN_EXR"
        fo.format.color_mode = "RGB"
        fo.format.color_depth = "32"   # float32: the composed frame must see the render's exact values
        fo.format.exr_codec = "NONE"   # noisy floats barely compress; writing fast matters more
        for n in self.names:
            fo.file_output_items.new("RGBA", n)
        fo.directory = str(self.tmp)
        fo.file_name = _PREFIX
        self.fo = fo
        self._link(noisy_socket="Noisy Image" if self.denoise else "Image")
        self.composer = _Composer(scene, self.denoise)
        self.kept: dict[int, dict[str, Path]] = {}
        self._muted: list[bpy.types.Node] = []

    def _link(self, noisy_socket: str) -> None:
        for sock in self.fo.inputs:
            for link in list(sock.links):
                self.tree.links.remove(link)
        sources = {"noisy": noisy_socket, "albedo": "Denoising Albedo", "normal": "Denoising Normal"}
        for i, n in enumerate(self.names):
            self.tree.links.new(self.rl.outputs[sources[n]], self.fo.inputs[i])

    def _take(self, dest_dir: Path, key: str) -> dict[str, Path]:
        """Move the passes the last render wrote into ``dest_dir`` as ``<key>_<pass>.exr``."""
        got: dict[str, Path] = {}
        for p in self.tmp.glob(f"{_PREFIX}*.exr"):
            n = next((n for n in self.names if p.name.startswith(_PREFIX + n)), None)
            if n is None or n in got:
                raise RuntimeError(f"unexpected pass file {p.name} in {self.tmp}")
            got[n] = dest_dir / f"{key}_{n}.exr"
            os.replace(p, got[n])
        if set(got) != set(self.names):
            raise RuntimeError(f"the render wrote passes {sorted(got)}, expected {list(self.names)}")
        return got

    def keep_base(self, key: int, rect: Optional[Rect]) -> None:
        """Call after each base render: keep its passes for frame ``key`` when it has a region."""
        if rect is None:
            for p in self.tmp.glob(f"{_PREFIX}*.exr"):
                p.unlink()
        else:
            self.kept[key] = self._take(self.base, f"{key:04d}")

    def last_passes(self) -> dict[str, np.ndarray]:
        """The passes the last render of the main scene wrote (full frame or crop), as top-down
        ``(H, W, 4)`` float32 arrays; their files are deleted."""
        files = self._take(self.tmp, "last")
        try:
            return {n: _read_float(p) for n, p in files.items()}
        finally:
            for p in files.values():
                p.unlink()

    def begin(self) -> None:
        """Switch to region renders: noisy crops (the denoiser runs on the composed frame), and the
        scene's other File Output nodes (e.g. the mask) muted so crops do not overwrite their files."""
        self._muted = [n for n in self.tree.nodes if n.bl_idname == "CompositorNodeOutputFile" and n != self.fo
                       and not n.mute]
        for n in self._muted:
            n.mute = True
        if self.denoise:
            self.scene.cycles.use_denoising = False
            self._link(noisy_socket="Image")

    def compose(self, key: int, rect: Rect, patch: dict[str, np.ndarray], dest: Path) -> None:
        """Paste ``patch`` (crop-sized passes of ``rect``) into the kept base passes of frame ``key``,
        denoise the whole frame as Cycles would and write it to ``dest``."""
        x0, y0, x1, y1 = rect
        passes = {}
        for n in self.names:
            full = np.array(_read_float(self.kept[key][n]))
            if patch[n].shape[:2] != (y1 - y0, x1 - x0):
                raise RuntimeError(f"patch for {rect} is {patch[n].shape[1]}x{patch[n].shape[0]}")
            full[y0:y1, x0:x1] = patch[n]
            passes[n] = full
        self.composer.write(passes, dest)

    def render(self, key: int, rect: Rect, dest: Path) -> float:
        """Render ``rect`` of the current scene state, paste it into base frame ``key`` and write the
        composed full frame to ``dest``; returns the seconds spent (render, compose and files)."""
        t0 = time.perf_counter()
        set_pixel_border(self.scene, rect)
        bpy.ops.render.render(write_still=False)
        self.compose(key, rect, self.last_passes(), dest)
        return time.perf_counter() - t0

    def end(self) -> None:
        """Back to full-frame base renders; the kept passes are deleted."""
        clear_border(self.scene)
        for n in self._muted:
            n.mute = False
        if self.denoise:
            self.scene.cycles.use_denoising = True
            self._link(noisy_socket="Noisy Image")
        shutil.rmtree(self.work, ignore_errors=True)
        self.kept.clear()
