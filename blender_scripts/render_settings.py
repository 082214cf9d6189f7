"""Cycles settings, device selection and the exact defect-mask pass (runs inside Blender)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import bpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: pipeline.render.gpu (stdlib only)
from pipeline.render.gpu import TEST_GPU_ON_CPU_BACKEND, TEST_GPU_ON_CPU_ENV  # noqa: E402
from pipeline.scene_spec import RenderSettings  # noqa: E402  (stdlib only)


def gpu_on_cpu_switch() -> bool:
    """Whether the test-only GPU-on-CPU fake is on (``MMVIAD_TEST_GPU_ON_CPU`` exactly ``"1"``; see
    pipeline/render/gpu.py). Used by tests/test_ray_cluster.py to run real Ray GPU scheduling on
    fake GPU resources; anything else keeps the real GPU path, which fails loudly without a GPU."""
    return os.environ.get(TEST_GPU_ON_CPU_ENV) == "1"


def select_gpu() -> str:
    """Use OptiX, else CUDA, on the GPUs this process can see; fail loudly if there is none.

    The visible GPU is chosen by ``CUDA_VISIBLE_DEVICES`` before Blender starts (set by Ray)."""
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for backend in ("OPTIX", "CUDA"):
        try:
            prefs.compute_device_type = backend
        except TypeError:
            continue
        prefs.refresh_devices()
        gpus = [d for d in prefs.devices if d.type == backend]
        if gpus:
            for d in prefs.devices:
                d.use = d.type == backend
            return backend
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    raise RuntimeError("render.device is 'gpu' but Blender found no OptiX or CUDA device "
                       f"(CUDA_VISIBLE_DEVICES={visible!r}); refusing to fall back to the CPU")


def configure(r: RenderSettings) -> dict:
    """Apply render settings from the spec; return what was actually used (for meta.json)."""
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    cy = scene.cycles
    backend = "CPU"
    fake_gpu = r.device == "gpu" and gpu_on_cpu_switch()
    if fake_gpu:
        print(f"[render_job] WARNING: {TEST_GPU_ON_CPU_ENV}=1: test-only fake, rendering this device: gpu job "
              f"on the CPU (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})", flush=True)
        backend = TEST_GPU_ON_CPU_BACKEND
        cy.device = "CPU"
    elif r.device == "gpu":
        backend = select_gpu()
        cy.device = "GPU"
    else:
        cy.device = "CPU"
    if r.threads:
        scene.render.threads_mode = "FIXED"
        scene.render.threads = r.threads
    else:
        scene.render.threads_mode = "AUTO"
    cy.samples = r.samples
    threshold = float(r.adaptive_threshold)
    cy.use_adaptive_sampling = threshold > 0  # off on CPU: no gain at low sample counts (measured)
    if threshold > 0:
        cy.adaptive_threshold = threshold
    cy.seed = r.seed
    cy.use_animated_seed = False
    cy.use_denoising = r.denoise != "off"
    if cy.use_denoising:
        cy.denoiser = "OPENIMAGEDENOISE"
        cy.denoising_quality = "FAST" if r.denoise == "fast" else "HIGH"
        cy.denoising_prefilter = "FAST" if r.denoise == "fast" else "ACCURATE"
        cy.denoising_use_gpu = r.device == "gpu" and not fake_gpu
    scene.render.use_persistent_data = r.persistent_data
    scene.render.resolution_x = r.width
    scene.render.resolution_y = r.height
    scene.render.resolution_percentage = 100
    scene.render.fps = r.fps
    scene.render.film_transparent = False
    # No 8-bit dither: Blender's dither noise depends on the position within the saved image, so a
    # cropped region render would not match the full frame (±2 levels); the denoised frames are smooth
    # enough that banding does not show.
    scene.render.dither_intensity = 0.0
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.image_settings.color_depth = "8"
    scene.render.image_settings.compression = 15  # PNG zlib level: fast writes, files barely larger
    scene.view_settings.view_transform = "Standard"  # keep the red paint saturated
    return {"backend": backend, "threads": scene.render.threads,
            "gpu_devices": [d.name for d in bpy.context.preferences.addons["cycles"].preferences.devices
                            if d.use and d.type != "CPU"] if backend in ("OPTIX", "CUDA") else []}


OBJECT_PASS_INDEX = 2  # the object's body material; its defect faces carry scene_build.DEFECT_PASS_INDEX = 1


def _mask_output(ng: bpy.types.NodeTree, socket, directory: str, item: str) -> bpy.types.Node:
    fo = ng.nodes.new("CompositorNodeOutputFile")
    fo.format.media_type = "IMAGE"
    fo.format.file_format = "PNG"
    fo.format.color_mode = "BW"
    fo.format.color_depth = "8"
    fo.file_output_items.new("FLOAT", item)
    fo.directory = directory
    fo.file_name = "m"  # Blender appends the frame number; render_job renames the file per frame
    ng.links.new(socket, fo.inputs[0])
    return fo


def _id_mask(ng: bpy.types.NodeTree, rl: bpy.types.Node, index: int) -> bpy.types.Node:
    idm = ng.nodes.new("CompositorNodeIDMask")
    idm.inputs["Index"].default_value = index
    idm.inputs["Anti-Alias"].default_value = False
    ng.links.new(rl.outputs["Material Index"], idm.inputs["ID value"])
    return idm


def setup_mask_pass(directory: str, object_directory: str | None = None) -> bpy.types.Node:
    """Material Index pass → ID Mask (index 1, no anti-aliasing) → 8-bit BW PNG, from the same
    render as the unmarked RGB (measured cost ≈ 0; bit-identical to a 1-spp mask render).

    With ``object_directory``, also the object's mask (body, index ``OBJECT_PASS_INDEX``, or defect
    faces) into that folder; the caller gives the body material that pass index."""
    scene = bpy.context.scene
    bpy.context.view_layer.use_pass_material_index = True
    ng = bpy.data.node_groups.new("defect_mask", "CompositorNodeTree")
    scene.compositing_node_group = ng
    rl = ng.nodes.new("CompositorNodeRLayers")
    idm = _id_mask(ng, rl, 1)
    fo = _mask_output(ng, idm.outputs[0], directory, "idmask")
    if object_directory is not None:
        union = ng.nodes.new("ShaderNodeMath")
        union.operation = "MAXIMUM"
        ng.links.new(idm.outputs[0], union.inputs[0])
        ng.links.new(_id_mask(ng, rl, OBJECT_PASS_INDEX).outputs[0], union.inputs[1])
        _mask_output(ng, union.outputs[0], object_directory, "objmask")
    # The group output carries the beauty image through, so the saved RGB is unchanged.
    ng.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    go = ng.nodes.new("NodeGroupOutput")
    ng.links.new(rl.outputs["Image"], go.inputs[0])
    scene.render.use_compositing = True
    return fo
