"""schoolcomms: a communications and reporting hub for UK schools and colleges."""
