"""Trainers, expert demonstrations and run directories."""
