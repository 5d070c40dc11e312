"""The DeepCanvas desktop app: a thin Qt view over the engine.

``gui.document`` holds the engine graph with its undo history; ``gui.canvas`` mirrors it in a
NodeGraphQt scene; each panel (palette, properties, problems, pre-flight, code, summary, templates) is
its own module; ``gui.mainwindow`` assembles them. Nothing here decides what a network means: that is
the engine's job, and everything the app does can be done with ``engine`` alone.
"""
