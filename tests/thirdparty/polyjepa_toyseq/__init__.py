"""A small third-party domain plugin, written only against polyjepa's public API.

Domain: 1-D sequences. The data are scikit-learn's handwritten digits read row by row
as 64-step sequences (real scans); tokens are 4-step chunks.
"""
