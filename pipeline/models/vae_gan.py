"""VAE-GAN: a conv VAE whose decoder is also a GAN generator, judged by a Wasserstein critic."""

from __future__ import annotations

from typing import ClassVar

from pipeline.models.gan import conv_critic
from pipeline.models.vae import ConvVAE
from pipeline.schema import Size


class ConvVAEWGAN(ConvVAE):
    """The conv VAE (same encoder, same decoder) plus the WGAN-GP DCGAN's critic, `critic_width` wide.

    The critic scores real images against reconstructions and prior samples; its features can also
    serve as the reconstruction space, as in VAE-GAN (see `VAEWassersteinUpdate`).
    """

    update_rule: ClassVar[str] = "vae_wasserstein"

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        image_size: int,
        latent_dim: Size = 16,
        width: Size = 32,
        depth: Size = 2,
        critic_width: Size = 32,
    ) -> None:
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            image_size=image_size,
            latent_dim=latent_dim,
            width=width,
            depth=depth,
        )
        self.critic = conv_critic(out_channels, image_size, critic_width, depth, batch_norm=False)
