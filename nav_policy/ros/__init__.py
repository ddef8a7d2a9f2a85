"""ROS 2 serving of nav_policy: rclpy nodes, their pure helpers and the composed runner.

Only this package imports rclpy, and nothing outside it imports this package. The modules
split into two kinds:

- pure helpers, importable and unit-tested without ROS 2: `params` (parameter specs and
  checks), `convert` (message fields to
  SensorFrame), `control` (one control tick: scheduling, goal tracking, safety), `fusion`
  (depth to virtual scan, scan merge, complementary filter);
- thin rclpy nodes on top of them: `local_planner_node` (with `follow_path`, the FollowPath
  action), `sim_bridge_node`, `sensor_fusion_node`, `navigator_node` (NavigateToPose and
  ComputePathToPose), plus `composed` (`nav-policy up`), `latency_bench`, `soak` and
  `nav_soak`; `tf` (a transform buffer, pure Python below its rclpy listener) and
  `build_interfaces` (tf2_msgs and nav2_msgs for a wheels-only install).

The safety layer (collision zones, limits, watchdog) lives in `nav_policy.planners.safety`, so
the benchmark can run it without importing this package.

See docs/ROS.md for topics, parameters and Nav2 integration.
"""
