"""streamdeblur: remove motion blur from video with a DeepDeblur network."""

__version__ = "0.1.0"
