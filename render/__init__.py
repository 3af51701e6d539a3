"""Cameras, render backends, sky and light, and the weather stage."""
