"""lokiserve: serve LoKiFormer models whose knowledge lives in swappable memory fields.

Importing the package does no model, engine or device work; import
``lokiserve.model`` for the reference model and ``lokiserve.memory`` for
field files.
"""

__version__ = "0.1.0"
