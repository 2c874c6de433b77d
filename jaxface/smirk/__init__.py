"""Image → 3D face (SMIRK, Retsinas et al., CVPR 2024): encoders trained on renders of the
morphable model and on real frames, reconstruction of photos and videos, and its evaluation.
"""
