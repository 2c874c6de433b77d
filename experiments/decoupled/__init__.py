"""Launchers of the decoupled 3D face GAN (Fernández Abrevaya et al., ICCV 2019)."""
