"""Thin rclpy adapters: declare parameters, convert messages, call core, publish."""
