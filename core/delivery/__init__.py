"""Delivery measures at the output level: deployments, PR cycle time, DORA and throughput."""
