"""PyBullet simulation: worlds, generator, grid maps, robot, simulator, rendering, speed benchmark."""
