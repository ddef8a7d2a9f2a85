"""Deceptive path planning: graphs, goal-recognition observers, metrics, classical baselines,
and a GNN policy trained with RL (Fatemi, Suttle & Sadler 2024). See docs/DECEPTION.md."""
