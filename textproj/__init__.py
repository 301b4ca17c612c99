"""textproj: tiny vocabulary-free text classifiers built on projection networks."""
