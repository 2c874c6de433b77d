"""The Motion3DGAN training step (WGAN-GP, ``n_critic`` critic updates then one generator update).

The step is :func:`jaxface.motion3dgan.train.make_train_step`: one jitted call runs the critic
updates in a ``lax.scan`` (each: generator forward, ``exp``/``log`` maps, critic on real and
fake, gradient penalty with its double backward, Adam) and then the generator update.

CPU-sized configuration: the generator's ``base_channels`` is 64 (the official 1024 needs about
36 GFLOP per sequence for its forward pass alone), the critic is the official size (64/32/16
channels, 1024 hidden, layer norm), 30 frames x 204 features, 12 classes, one-hot conditions,
batch 8 (quick runs: base 16, a 16/8/4-channel critic with 64 hidden units, batch 4,
``n_critic`` 1). Variants: ``n_critic`` 4 (official) and
1, and the step without donated buffers. FLOPs are matmul and convolution FLOPs counted from
the step's jaxpr (the gradient penalty's double backward included).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.analytic import matmul_flops
from benchmarks.common import JaxStep, interleave, memory_fields, timing_fields
from jaxface.train import num_params as count_params

NAME = "motion3dgan_train"


def build(batch: int, base_channels: int, n_critic: int, donate: bool, counter, seed: int = 0,
          critic_channels: tuple[int, ...] = (64, 32, 16), critic_hidden: int = 1024):
    """A compiled Motion3DGAN step on a fixed batch.

    Returns:
      ``(runner, flops, num_params)``: the :class:`JaxStep`, the step's matmul and convolution
      FLOPs, and the generator plus critic parameter count.
    """
    from jaxface.manifold import project_to_sphere
    from jaxface.models import Motion3DGANCritic, Motion3DGANGenerator
    from jaxface.motion3dgan.train import GANModels, create_gan_state, make_train_step

    frames, features, classes = 30, 204, 12
    models = GANModels(
        generator=Motion3DGANGenerator(num_frames=frames, num_features=features,
                                       base_channels=base_channels),
        critic=Motion3DGANCritic(channels=critic_channels, hidden=critic_hidden),
        gen_tx=optax.adam(1e-4, b1=0.5, b2=0.9),
        critic_tx=optax.adam(1e-4, b1=0.5, b2=0.9),
        num_classes=classes,
    )
    rng = np.random.default_rng(seed)
    q = project_to_sphere(jnp.asarray(rng.standard_normal((batch, frames, features)), jnp.float32))
    reference = project_to_sphere(jnp.mean(q, axis=0))
    batch_arrays = {"q": q, "label": jnp.asarray(rng.integers(0, classes, batch), jnp.int32)}
    # Initialised under jit: one compilation instead of one per operation.
    state = jax.jit(lambda ref, key: create_gan_state(models, ref, key))(
        reference, jax.random.key(seed))
    step = make_train_step(models, n_critic=n_critic, donate=donate)
    key = jax.random.key(seed + 1)
    flops = matmul_flops(step, state, batch_arrays, key)
    num_params = count_params((state.gen_params, state.critic_params))
    holder = {"state": state}

    def call():
        holder["state"], _ = step(holder["state"], batch_arrays, key)
        return holder["state"]

    runner = JaxStep(f"gan n_critic={n_critic}", call, step, counter)
    runner.holder = holder
    runner.args = (batch_arrays, key)
    return runner, flops, num_params


def run(ctx) -> None:
    """Times the step variants side by side."""
    batch, base_channels = (4, 16) if ctx.quick else (8, 64)
    critic = {"critic_channels": (16, 8, 4), "critic_hidden": 64} if ctx.quick else {}
    rounds = ctx.rounds(3, 2)
    configs = [(1, True)] if ctx.quick else [(4, True), (4, False), (1, True)]
    runners, flops = {}, {}
    num_params = None
    for n_critic, donate in configs:
        name = f"jax/n_critic{n_critic}" + ("" if donate else "/no_donation")
        runners[name], flops[name], num_params = build(batch, base_channels, n_critic, donate,
                                                       ctx.counter, **critic)
    timings = interleave(runners, rounds=rounds, warmup=1, counter=ctx.counter)
    for name, t in timings.items():
        runner = runners[name]
        n_critic = int(name.split("n_critic")[1].split("/")[0])
        rec = ctx.recorder.add(
            case=NAME, kind="timing", variant=name, backend="jax",
            dtype="float32", batch=batch, gen_base_channels=base_channels, n_critic=n_critic,
            critic_channels=list(critic.get("critic_channels", (64, 32, 16))),
            num_params=num_params,
            donated=not name.endswith("no_donation"),
            **timing_fields(t, batch=batch, flops=flops[name], peaks=ctx.peaks),
            **runner.fields(strict=True),
            **memory_fields(runner.jitted, runner.holder["state"], *runner.args),
        )
        ctx.log(f"    {name}: {1e3 * rec['median_s']:.0f} ms/step, "
                f"{rec['gflops_per_s']:.1f} GFLOP/s")
