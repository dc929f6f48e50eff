"""The code the measured servers load, each run inside its own venv (not the driver's).

The hand-written apps are what a careful engineer writes without a serving framework;
``ceiling_app`` answers a constant and bounds what any Python server can do here.
"""
