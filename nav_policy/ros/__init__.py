"""ROS 2 serving of nav_policy: rclpy nodes, their pure helpers and the composed runner.

Only this package imports rclpy, and nothing outside it imports this package. The modules
split into two kinds:

- pure helpers, importable and unit-tested without ROS 2: `params` (parameter specs and
  checks), `convert` (message fields to
  SensorFrame), `control` (one control tick: scheduling, goal tracking, safety), `fusion`
  (depth to virtual scan, scan merge, complementary filter);
- thin rclpy nodes on top of them: `local_planner_node`, `sim_bridge_node`,
  `sensor_fusion_node`, plus `composed` (`nav-policy up`) and `latency_bench`.

The safety layer (collision zones, limits, watchdog) lives in `nav_policy.planners.safety`, so
the benchmark can run it without importing this package.

See docs/ROS.md for topics, parameters and Nav2 integration.
"""
