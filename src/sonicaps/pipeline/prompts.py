"""The AudioSetCaps questions, kept verbatim: they are the recipe's published prompts."""

QUESTIONS: tuple[str, str, str] = (
    "Describe this audio according to the sounds in it.",
    "Based on the QAs, give some information about the speech, such as the emotion of the "
    "speaker, the gender of the speaker, and the spoken language, only if speech is present "
    "in this audio.",
    "Based on the QAs, give some information about the music, such as music genre and music "
    "instruments, only if music is present in this audio.",
)

# Bumped whenever QUESTIONS or a writer prompt changes; recorded with every row.
PROMPT_VERSION = "audiosetcaps-1"
