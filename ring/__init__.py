"""The ring: partition math, the offline RingBuilder and the runtime Ring."""
