"""sizeup: one large model in a single shot, or small models that try, test and branch?"""

__version__ = "0.1.0"
