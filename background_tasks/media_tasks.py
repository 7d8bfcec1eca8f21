"""Media tasks: face recognition for attendance, media offload to object storage, transcription.

Its tasks land with their domain issue; until then the registry tests list them as expected.
"""
