"""Adapt the network to one camera from its own footage, without sharp references: pick the
nearly sharp frames, blur them synthetically, fine-tune (`streamdeblur adapt`; the library
entry point is `streamdeblur.adapt.run.adapt`)."""
