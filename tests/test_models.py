"""pipeline.models: every registered model builds from tiny kwargs, keeps shapes and trains."""

from __future__ import annotations

import re

import pytest
import torch

from pipeline.models import MODELS, build_model
from pipeline.models.ambient import SameConv, SameDeconv

TINY = {
    "conv_ae": {"latent_dim": 4, "width": 4},
    "conv_vae": {"latent_dim": 4, "width": 4},
    "residual_vae": {"latent_dim": 4, "width": 4},
    "pca": {"latent_dim": 4},
    "seed_conv_ae": {},
    "linear_ae": {"latent_dim": 4, "hidden": (16, 8)},
    "linear_vae": {"latent_dim": 4, "hidden": (16, 8)},
    "linear_gan": {"latent_dim": 4, "generator_hidden": (8, 16), "critic_hidden": (16, 8)},
    "linear_wgan": {"latent_dim": 4, "generator_hidden": (8, 16), "critic_hidden": (16, 8)},
    "dcgan": {"latent_dim": 4, "width": 4},
    "wgan_gp": {"latent_dim": 4, "width": 4},
    "vae_wgan": {"latent_dim": 4, "width": 4},
    "colorizer": {"width": 4},
    "colorizer_unet": {"width": 4},
    "unet": {"width": 4, "depth": 3},
    "pix2pix": {"width": 4, "depth": 3, "critic_width": 4, "critic_layers": 2},
    "conditional_aegan": {"latent_dim": 4, "width": 4, "critic_width": 4, "condition_width": 2},
    "image_conditional_aegan": {"latent_dim": 4, "width": 4, "critic_width": 4, "condition_width": 2},
    "ambient_vaegan": {"latent_dim": 4, "width": 4},
    "ambient_gan": {"latent_dim": 4, "width": 4},
}
CONDITIONAL = sorted(name for name, model in MODELS.items() if hasattr(model, "conditioned_on"))
RECONSTRUCTING = sorted(name for name, model in MODELS.items() if hasattr(model, "encode") and name not in CONDITIONAL)
SAMPLING = sorted(name for name, model in MODELS.items() if hasattr(model, "sample"))
TRANSLATING = [
    "colorizer",
    "colorizer_unet",
    "unet",
    "pix2pix",
]  # image to image, no latent to encode to or sample from


def test_every_model_has_a_tiny_config():
    assert set(TINY) == set(MODELS)


def test_every_model_reconstructs_samples_or_translates():
    assert set(RECONSTRUCTING) | set(SAMPLING) | set(TRANSLATING) | set(CONDITIONAL) == set(MODELS)
    assert set(SAMPLING) - set(RECONSTRUCTING) == {"linear_gan", "linear_wgan", "dcgan", "wgan_gp", "ambient_gan"}


@pytest.mark.parametrize("name", RECONSTRUCTING)
@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_forward_shapes_and_range(name, channels, size):
    model = build_model(name, in_channels=channels, out_channels=channels, image_size=size, **TINY[name])
    output = model(torch.rand(5, channels, size, size))
    assert output.image.shape == (5, channels, size, size)
    latent = TINY[name].get("latent_dim")
    assert output.latent.shape == ((5, latent) if latent else (5, 32, size, size))
    if name != "pca":  # PCA is linear and unclipped; the others end in a sigmoid
        assert output.image.min() >= 0.0 and output.image.max() <= 1.0
        output.image.mean().backward()
        assert all(p.grad is not None for name, p in model.named_parameters() if not name.startswith("critic."))


@pytest.mark.parametrize("name", SAMPLING)
@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_samples_have_the_image_shape_and_range_and_follow_the_seed(name, channels, size):
    model = build_model(name, in_channels=channels, out_channels=channels, image_size=size, **TINY[name]).eval()
    first = model.sample(5, torch.Generator().manual_seed(3))
    assert first.shape == (5, channels, size, size)
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert torch.equal(first, model.sample(5, torch.Generator().manual_seed(3)))
    assert not torch.equal(first, model.sample(5, torch.Generator().manual_seed(4)))


@pytest.mark.parametrize("name", ["linear_gan", "linear_wgan", "dcgan", "wgan_gp", "vae_wgan"])
def test_critics_score_each_image_once(name):
    model = build_model(name, in_channels=3, out_channels=3, image_size=16, **TINY[name])
    assert model.critic(torch.rand(6, 3, 16, 16)).shape == (6,)


def test_the_conv_generator_is_the_conv_vae_decoder_layer_for_layer():
    kwargs = {"in_channels": 1, "out_channels": 1, "image_size": 28, "latent_dim": 8, "width": 8}
    decoder = build_model("conv_vae", **kwargs)
    generator = build_model("dcgan", **kwargs).generator
    shapes = [p.shape for p in [*decoder.project.parameters(), *decoder.decoder.parameters()]]
    assert shapes == [p.shape for p in generator.parameters()]


@pytest.mark.parametrize("name", ["dcgan", "wgan_gp", "vae_wgan"])
def test_the_critic_width_is_set_apart_from_the_generators(name):
    kwargs = {"in_channels": 1, "out_channels": 1, "image_size": 16, "latent_dim": 4, "width": 4}
    narrow, wide = build_model(name, **kwargs, critic_width=4), build_model(name, **kwargs, critic_width=16)
    convs = [m.out_channels for m in wide.critic.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [16, 32]  # the down stack doubles the width at each of its two levels

    def drawing(model):  # what draws the images: the generator, or the VAE-WGAN's decoder
        return [p.shape for p in (model.decoder if name == "vae_wgan" else model.generator).parameters()]

    assert drawing(narrow) == drawing(wide)


def test_only_the_wasserstein_critics_drop_batch_norm():
    kwargs = {"in_channels": 1, "out_channels": 1, "image_size": 16, "latent_dim": 4, "width": 4}

    def norms(model):
        return sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.critic.modules())

    assert norms(build_model("dcgan", **kwargs)) == 2
    assert norms(build_model("wgan_gp", **kwargs)) == norms(build_model("vae_wgan", **kwargs)) == 0


def test_linear_models_have_the_seeds_fashion_mnist_sizes():
    def count(name):
        return sum(p.numel() for p in build_model(name, in_channels=1, out_channels=1, image_size=28).parameters())

    # encoder 784-512-256-128-20 and decoder 20-128-256-512-784, weights and biases
    layers = [(784, 512), (512, 256), (256, 128), (128, 20), (20, 128), (128, 256), (256, 512), (512, 784)]
    assert count("linear_ae") == sum(a * b + b for a, b in layers)
    # generator z(100)-128-256-256-512-784 and discriminator 784-512-512-256-128-64-1
    gan = [
        (100, 128),
        (128, 256),
        (256, 256),
        (256, 512),
        (512, 784),
        (784, 512),
        (512, 512),
        (512, 256),
        (256, 128),
        (128, 64),
        (64, 1),
    ]
    assert count("linear_gan") == count("linear_wgan") == sum(a * b + b for a, b in gan)


def test_unknown_model_lists_the_names():
    with pytest.raises(
        ValueError,
        match=re.escape(f"unknown model 'vae'; choose one of {', '.join(sorted(MODELS))}"),
    ):
        build_model("vae")


def test_seed_port_has_the_seeds_weight_counts():
    for channels, expected in ((1, 32_697), (3, 33_099)):  # the seed notebook's model summaries
        model = build_model("seed_conv_ae", in_channels=channels, out_channels=channels, image_size=128)
        assert sum(p.numel() for p in model.parameters()) == expected


def test_vae_samples_from_the_prior_and_uses_the_mean_in_eval_mode():
    model = build_model("conv_vae", in_channels=1, out_channels=1, image_size=16, latent_dim=3, width=4)
    generator = torch.Generator().manual_seed(0)
    assert model.sample(6, generator).shape == (6, 1, 16, 16)
    x = torch.rand(2, 1, 16, 16)
    model.eval()
    first, second = model(x), model(x)
    assert torch.equal(first.image, second.image) and torch.equal(first.latent, first.mean)
    model.train()
    assert not torch.equal(model(x).image, model(x).image)  # a fresh posterior sample each call


def test_conv_ae_rejects_a_size_its_depth_cannot_halve():
    with pytest.raises(ValueError, match="image_size 30 must be divisible by 2\\*\\*depth = 4"):
        build_model("conv_ae", in_channels=1, out_channels=1, image_size=30)


@pytest.mark.parametrize("name", TRANSLATING)
@pytest.mark.parametrize(("in_channels", "out_channels", "size"), [(1, 2, 16), (1, 3, 24)])
def test_translators_keep_the_size_and_their_output_range(name, in_channels, out_channels, size):
    model = build_model(name, in_channels=in_channels, out_channels=out_channels, image_size=size, **TINY[name])
    image = model(torch.rand(3, in_channels, size, size)).image
    assert image.shape == (3, out_channels, size, size)
    low, high = getattr(model, "output_range", (0.0, 1.0))
    assert low <= image.min() and image.max() <= high
    image.pow(2).mean().backward()
    assert all(p.grad is not None for key, p in model.named_parameters() if not key.startswith("critic."))


def test_colorizer_has_the_seeds_weight_count_and_outputs_signed_chroma():
    seed = build_model("colorizer", in_channels=1, out_channels=2, image_size=256, width=64)
    assert sum(p.numel() for p in seed.parameters()) == 6_219_410  # the seed's Keras summary
    assert seed.output_range == (-1.0, 1.0)
    small = build_model("colorizer", in_channels=1, out_channels=2, image_size=16, width=4)
    last = [m for m in small.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():  # the last layer's output is −1 everywhere: tanh keeps the sign, a sigmoid would not
        last.weight.zero_(), last.bias.fill_(-1.0)
    chroma = small(torch.rand(2, 1, 16, 16)).image
    assert torch.allclose(chroma, torch.tanh(torch.tensor(-1.0)))  # ab/128 is signed
    # The seed upsamples after the tanh: every 2×2 block of the output is one prediction.
    chroma = build_model("colorizer", in_channels=1, out_channels=2, image_size=16, width=4)(
        torch.rand(2, 1, 16, 16)
    ).image
    assert torch.equal(chroma[..., ::2, ::2], chroma[..., 1::2, 1::2])


def test_colorizer_unet_differs_from_the_colorizer_only_by_its_skips():
    plain = build_model("colorizer", in_channels=1, out_channels=2, image_size=32, width=8)
    unet = build_model("colorizer_unet", in_channels=1, out_channels=2, image_size=32, width=8)
    extra = sum(p.numel() for p in unet.parameters()) - sum(p.numel() for p in plain.parameters())
    # Only the two decoder convolutions that receive the skips widen: 3×3 kernels over 4w and 2w more inputs.
    assert extra == 3 * 3 * (4 * 8) * 8 + 3 * 3 * (2 * 8) * (8 // 2)


def test_pix2pix_has_the_published_sizes_at_256_pixels():
    model = build_model("pix2pix", in_channels=3, out_channels=3, image_size=256, depth=8)
    # pix2pix's print_network: G (unet_256, ngf 64) 54.414 M, D (basic, ndf 64, 6 input channels) 2.769 M
    assert sum(p.numel() for p in model.generator.parameters()) == 54_413_955
    assert sum(p.numel() for p in model.critic.parameters()) == 2_768_705
    assert model.critic(torch.rand(1, 3, 256, 256), torch.rand(1, 3, 256, 256)).shape == (1, 1, 30, 30)  # 70×70 patches


def test_unet_joins_every_encoder_level_into_the_decoder():
    model = build_model("unet", in_channels=1, out_channels=3, image_size=64, width=4, depth=6)
    widths = [4, 8, 16, 32, 32, 32]  # w·min(2^level, 8)
    ups = [next(m for m in level if isinstance(m, torch.nn.ConvTranspose2d)) for level in model.up]
    assert [up.in_channels for up in ups] == [2 * w for w in widths[:-1]] + [
        widths[-1]
    ]  # skip + decoder; the innermost alone
    assert [up.out_channels for up in ups] == [3, *widths[:-1]]
    dropout = [any(isinstance(m, torch.nn.Dropout) for m in level) for level in model.up]
    assert dropout == [
        False,
        False,
        False,
        False,
        True,
        False,
    ]  # pix2pix: the 8w levels between the fourth and the innermost


def conditional(name, channels=1, size=28, classes=10):
    condition_channels = classes if name == "conditional_aegan" else 1
    model = build_model(
        name,
        in_channels=channels,
        out_channels=channels,
        image_size=size,
        condition_channels=condition_channels,
        **TINY[name],
    )
    condition = (
        torch.eye(classes)[torch.arange(5) % classes] if name == "conditional_aegan" else torch.rand(5, 1, size, size)
    )
    return model, condition


@pytest.mark.parametrize(
    ("name", "channels", "size"),
    [("conditional_aegan", 1, 28), ("image_conditional_aegan", 3, 32), ("image_conditional_aegan", 1, 16)],
)
def test_conditional_models_encode_decode_and_judge_with_the_condition(name, channels, size):
    model, condition = conditional(name, channels, size)
    x = torch.rand(5, channels, size, size)
    output = model(x, condition)
    assert output.image.shape == x.shape and output.latent.shape == (5, 4)
    assert output.image.min() >= 0.0 and output.image.max() <= 1.0
    assert model.critic(x, condition).shape == (5,)
    other = condition.roll(1, 0)  # (train mode: untrained batch norms in eval mode flatten tiny N(0, 0.02) signals)
    # The decoder reads the condition: the same latent with another condition decodes to another image.
    assert not torch.allclose(model.decode(output.latent, condition), model.decode(output.latent, other))
    assert not torch.allclose(model.encode(x, condition), model.encode(x, other))


def test_label_model_has_the_seeds_layers():
    model = build_model("conditional_aegan", in_channels=1, out_channels=1, image_size=28, condition_channels=10)

    def count(module):
        return sum(p.numel() for p in module.parameters())

    # Counted from the seed's layer list (nc 1, ngf 32, ndf 32, ncondf 12, nhd 16), weights, biases, batch norms:
    # condition ConvT 10→24 k6 (+bias), BN 24, ConvT 24→12 k4 (+bias); image Conv 1→128 k3; BN 140; Conv 140→64 k3;
    # BN 64; Conv 64→32 k3; BN 32; Conv 32→16 k4 (+bias).
    encoder = (
        (10 * 24 * 36 + 24)
        + 48
        + (24 * 12 * 16 + 12)
        + 128 * 9
        + 280
        + 140 * 64 * 9
        + 128
        + 64 * 32 * 9
        + 64
        + (32 * 16 * 16 + 16)
    )
    assert count(model.encoder) == encoder
    # critic: ConvT 10→32 k4; Conv 1→32 k4; Conv 32→64 k4, BN; Conv 64→96 k3; BN 128; Conv 128→256 k3, BN;
    # Conv 256→64 k3, BN; Conv 64→1 k4. No biases.
    critic = (
        10 * 32 * 16
        + 32 * 16
        + 32 * 64 * 16
        + 128
        + 64 * 96 * 9
        + 256
        + 128 * 256 * 9
        + 512
        + 256 * 64 * 9
        + 128
        + 64 * 16
    )
    assert count(model.critic) == critic
    x = torch.rand(2, 1, 28, 28)
    assert model.decode(model.encode(x, torch.eye(10)[:2]), torch.eye(10)[:2]).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="built for 28×28 images, not 32"):
        build_model("conditional_aegan", in_channels=1, out_channels=1, image_size=32, condition_channels=10)


def test_image_conditional_model_rejects_sizes_it_cannot_halve_to_four():
    with pytest.raises(ValueError, match="4 times a power of two"):
        build_model("image_conditional_aegan", in_channels=3, out_channels=3, image_size=48, condition_channels=1)


def test_the_residual_vae_has_the_seeds_seven_convolutions_and_two_residual_blocks_each_way():
    from pipeline.models.residual import ResidualBlock

    model = build_model("residual_vae", in_channels=1, out_channels=1, image_size=28, latent_dim=8, width=8)

    def count(module, kinds):
        return sum(isinstance(m, kinds) for m in module.modules())

    convolutions = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    assert count(model.encoder, convolutions) == count(model.decoder, convolutions) == 7
    assert count(model.encoder, ResidualBlock) == count(model.decoder, ResidualBlock) == 2
    block = ResidualBlock(4)
    torch.nn.init.zeros_(block.body[-1].weight), torch.nn.init.zeros_(block.body[-1].bias)
    x = torch.rand(2, 4, 7, 7)
    assert torch.equal(block(x), x)  # the skip path: a block whose last convolution is zero passes x through


def test_same_padding_convolutions_sample_as_tensorflow_does():
    """A kernel that is 1 at its centre reads TensorFlow's SAME grid: even sides pad after only, so output i
    sits on input 2i + 1; odd sides pad both ends, so on 2i. The transposed convolution puts input i on 2i + 1."""
    conv = SameConv(1, 1)
    with torch.no_grad():
        conv.weight.zero_(), conv.weight[0, 0, 1, 1].fill_(1.0), conv.bias.zero_()
    even = torch.arange(28.0 * 28).view(1, 1, 28, 28)
    assert torch.equal(conv(even), even[..., 1::2, 1::2])  # 28 -> 14
    odd = torch.arange(49.0).view(1, 1, 7, 7)
    assert torch.equal(conv(odd), odd[..., ::2, ::2])  # 7 -> 4
    deconv = SameDeconv(1, 1)
    with torch.no_grad():
        deconv.weight.zero_(), deconv.weight[0, 0, 1, 1].fill_(1.0), deconv.bias.zero_()
    small = torch.arange(1.0, 50.0).view(1, 1, 7, 7)
    big = deconv(small)
    assert big.shape == (1, 1, 14, 14)
    assert torch.equal(big[..., 1::2, 1::2], small) and big[..., ::2, :].abs().sum() == 0


def test_the_seed_networks_at_both_sizes():
    mnist = build_model("ambient_vaegan", in_channels=1, out_channels=1, image_size=28)
    linears = [m for m in mnist.modules() if isinstance(m, torch.nn.Linear)]
    # encoder 4·4·64 -> 2·20 (mean and log-variance), decoder 20 -> 7·7·32, discriminator 4·4·64 -> 1
    assert [(m.in_features, m.out_features) for m in linears] == [(1024, 40), (20, 7 * 7 * 32), (1024, 1)]
    image = torch.rand(3, 1, 28, 28)
    assert mnist.critic.features(image).shape == (3, 64, 4, 4)
    celeba = build_model("ambient_vaegan", in_channels=3, out_channels=3, image_size=64)
    linears = [(m.in_features, m.out_features) for m in celeba.modules() if isinstance(m, torch.nn.Linear)]
    assert linears == [(8 * 8 * 256, 1024), (1024, 256), (128, 8 * 8 * 256), (4 * 4 * 256, 256), (256, 1)]
    assert celeba.critic.features(torch.rand(2, 3, 64, 64)).shape == (2, 256, 4, 4)
    gan = build_model("ambient_gan", in_channels=3, out_channels=3, image_size=64)
    assert sum(p.numel() for p in gan.parameters()) == sum(
        p.numel() for name, p in celeba.named_parameters() if not name.startswith("encoder.")
    )  # the AmbientGAN is the VAE-GAN without its encoder


@pytest.mark.parametrize("name", ["linear_gan", "linear_wgan"])
def test_a_linear_critic_without_hidden_layers_scores_the_pixels_directly(name):
    model = build_model(name, in_channels=1, out_channels=1, image_size=8, latent_dim=4, critic_hidden=())
    assert [type(layer) for layer in model.critic.modules() if isinstance(layer, torch.nn.Linear)] == [torch.nn.Linear]
    assert model.critic(torch.rand(3, 1, 8, 8)).shape == (3,)


def test_a_resize_convolution_paints_a_flat_map_flat_where_a_transposed_one_paints_a_checkerboard():
    from pipeline.models.autoencoder import up_stack

    torch.manual_seed(0)
    flat = torch.ones(1, 2, 4, 4)
    for upsample, checkerboard in (("transposed", True), ("resize", False)):
        layers = torch.nn.Sequential(*up_stack([2], 1, upsample)[:-1])  # the last level, before the sigmoid
        inner = layers(flat)[0, 0, 2:-2, 2:-2]  # (4, 4), away from the zero padding
        phases = torch.stack([inner[row::2, column::2].flatten() for row in (0, 1) for column in (0, 1)])
        assert inner.shape == (4, 4) and torch.allclose(phases, phases[:, :1])  # each phase is flat
        assert (phases[:, 0].max() - phases[:, 0].min() > 1e-3) == checkerboard, upsample
    model = build_model("dcgan", in_channels=1, out_channels=1, image_size=28, latent_dim=4, upsample="resize")
    assert model.generator(torch.zeros(3, 4)).shape == (3, 1, 28, 28)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in model.generator.modules())
