"""Report tasks: scheduled and on-demand reports, PDFs and their clean-up.

Its tasks land with their domain issue; until then the registry tests list them as expected.
"""
