"""cptbot: answers questions about Practice Fusion's CPT license FAQ."""
from .errors import CptbotError, InputError, KnowledgeBaseError, StateError
from .knowledge import DEFAULT_FAQ, FeeSettings, Intent, KnowledgeBase, MatchSettings, load_faq, parse_faq
from .matching import Candidate, Match, Matcher
from .dialog import Conversation, Reply, State
from .fee import MAX_DOCTORS, MAX_USERS, Estimate, estimate_fee, format_money
