"""Fault injection: kills, damaged files, full disks, concurrent runs and NaN, with nothing lost."""
