"""Tests of notar.keystore."""
