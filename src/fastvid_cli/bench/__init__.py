"""Measurement: :mod:`.runner` (pruning, prefill, questions and TTFT, ``fastvid bench``), :mod:`.results` (their
dataclasses and targets), :mod:`.device` (where it ran).
"""
