"""spaCy v3 pipeline component ``textproj`` (registered through the ``spacy_factories`` entry
point, so ``spacy.blank("en").add_pipe("textproj", config={"model": "model.tpn"})`` needs no
import first). See ``spacy_component.component``."""

from spacy_component.component import DEFAULT_CONFIG, TextProjCategorizer, make_textproj

__all__ = ["DEFAULT_CONFIG", "TextProjCategorizer", "make_textproj"]
