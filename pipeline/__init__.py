"""aegan: rebuild five autoencoder/GAN image systems and compare them on equal terms."""
