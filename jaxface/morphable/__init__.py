"""Morphable face models with FLAME's structure: template, identity and expression bases, a jaw
joint with linear-blend skinning, eyelid shapes, landmark embeddings and mask regions, evaluated
in pure JAX. Two sources behind one API: FLAME read from a user's file, and the open model that
ships with jaxface.
"""
