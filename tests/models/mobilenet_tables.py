"""MobileNetV3-minimal as published (Howard et al., ICCV 2019, Tables 1-2 without
squeeze-excite and hard-swish, every depthwise kernel 3x3), block by block with its hidden width.
"""

# Per stage, per block: (kind, stride, hidden width, output width).
SMALL = [
    [("ds", 2, 16, 16)],
    [("ir", 2, 72, 24), ("ir", 1, 88, 24)],
    [("ir", 2, 96, 40), ("ir", 1, 240, 40), ("ir", 1, 240, 40)],
    [("ir", 1, 120, 48), ("ir", 1, 144, 48)],
    [("ir", 2, 288, 96), ("ir", 1, 576, 96), ("ir", 1, 576, 96)],
    [("cn", 1, 576, 576)],
]
LARGE = [
    [("ds", 1, 16, 16)],
    [("ir", 2, 64, 24), ("ir", 1, 72, 24)],
    [("ir", 2, 72, 40), ("ir", 1, 120, 40), ("ir", 1, 120, 40)],
    [("ir", 2, 240, 80), ("ir", 1, 200, 80), ("ir", 1, 184, 80), ("ir", 1, 184, 80)],
    [("ir", 1, 480, 112), ("ir", 1, 672, 112)],
    [("ir", 2, 672, 160), ("ir", 1, 960, 160), ("ir", 1, 960, 160)],
    [("cn", 1, 960, 960)],
]
TABLES = {"small": SMALL, "large": LARGE}
