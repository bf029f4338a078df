"""Question and answer wording of the instruments, translatable (design.md §4).

EQ-5D wording follows the UK English EQ-5D-3L and EQ-5D-5L paper questionnaires; ODI wording
follows ODI v2.1a (Fairbank & Pynsent 2000). Each answer's value is the score it carries.
"""

from django.utils.translation import gettext_lazy as _

EQ5D_DIMENSIONS = [
    # field suffix, heading, 3L answers, 5L answers
    (
        "mobility",
        _("Mobility"),
        [
            _("I have no problems in walking about"),
            _("I have some problems in walking about"),
            _("I am confined to bed"),
        ],
        [
            _("I have no problems in walking about"),
            _("I have slight problems in walking about"),
            _("I have moderate problems in walking about"),
            _("I have severe problems in walking about"),
            _("I am unable to walk about"),
        ],
    ),
    (
        "self_care",
        _("Self-care"),
        [
            _("I have no problems with self-care"),
            _("I have some problems washing or dressing myself"),
            _("I am unable to wash or dress myself"),
        ],
        [
            _("I have no problems washing or dressing myself"),
            _("I have slight problems washing or dressing myself"),
            _("I have moderate problems washing or dressing myself"),
            _("I have severe problems washing or dressing myself"),
            _("I am unable to wash or dress myself"),
        ],
    ),
    (
        "usual_activities",
        _("Usual activities (e.g. work, study, housework, family or leisure activities)"),
        [
            _("I have no problems with performing my usual activities"),
            _("I have some problems with performing my usual activities"),
            _("I am unable to perform my usual activities"),
        ],
        [
            _("I have no problems doing my usual activities"),
            _("I have slight problems doing my usual activities"),
            _("I have moderate problems doing my usual activities"),
            _("I have severe problems doing my usual activities"),
            _("I am unable to do my usual activities"),
        ],
    ),
    (
        "pain_discomfort",
        _("Pain / discomfort"),
        [
            _("I have no pain or discomfort"),
            _("I have moderate pain or discomfort"),
            _("I have extreme pain or discomfort"),
        ],
        [
            _("I have no pain or discomfort"),
            _("I have slight pain or discomfort"),
            _("I have moderate pain or discomfort"),
            _("I have severe pain or discomfort"),
            _("I have extreme pain or discomfort"),
        ],
    ),
    (
        "anxiety_depression",
        _("Anxiety / depression"),
        [
            _("I am not anxious or depressed"),
            _("I am moderately anxious or depressed"),
            _("I am extremely anxious or depressed"),
        ],
        [
            _("I am not anxious or depressed"),
            _("I am slightly anxious or depressed"),
            _("I am moderately anxious or depressed"),
            _("I am severely anxious or depressed"),
            _("I am extremely anxious or depressed"),
        ],
    ),
]


def eq5d_choices(dimension: str, levels: int) -> list[tuple[int, str]]:
    for name, _heading, three, five in EQ5D_DIMENSIONS:
        if name == dimension:
            answers = three if levels == 3 else five
            return [(level, text) for level, text in enumerate(answers, start=1)]
    raise KeyError(dimension)


ODI_SECTIONS = [
    (
        "pain_intensity",
        _("Section 1 – Pain intensity"),
        [
            _("I have no pain at the moment"),
            _("The pain is very mild at the moment"),
            _("The pain is moderate at the moment"),
            _("The pain is fairly severe at the moment"),
            _("The pain is very severe at the moment"),
            _("The pain is the worst imaginable at the moment"),
        ],
    ),
    (
        "personal_care",
        _("Section 2 – Personal care (washing, dressing etc.)"),
        [
            _("I can look after myself normally without causing extra pain"),
            _("I can look after myself normally but it causes extra pain"),
            _("It is painful to look after myself and I am slow and careful"),
            _("I need some help but manage most of my personal care"),
            _("I need help every day in most aspects of self-care"),
            _("I do not get dressed, I wash with difficulty and stay in bed"),
        ],
    ),
    (
        "lifting",
        _("Section 3 – Lifting"),
        [
            _("I can lift heavy weights without extra pain"),
            _("I can lift heavy weights but it gives extra pain"),
            _(
                "Pain prevents me from lifting heavy weights off the floor, but I can manage "
                "if they are conveniently placed, e.g. on a table"
            ),
            _(
                "Pain prevents me from lifting heavy weights, but I can manage light to medium "
                "weights if they are conveniently positioned"
            ),
            _("I can lift very light weights"),
            _("I cannot lift or carry anything at all"),
        ],
    ),
    (
        "walking",
        _("Section 4 – Walking"),
        [
            _("Pain does not prevent me walking any distance"),
            _("Pain prevents me from walking more than 1 mile"),
            _("Pain prevents me from walking more than half a mile"),
            _("Pain prevents me from walking more than 100 yards"),
            _("I can only walk using a stick or crutches"),
            _("I am in bed most of the time"),
        ],
    ),
    (
        "sitting",
        _("Section 5 – Sitting"),
        [
            _("I can sit in any chair as long as I like"),
            _("I can only sit in my favourite chair as long as I like"),
            _("Pain prevents me sitting more than one hour"),
            _("Pain prevents me from sitting more than 30 minutes"),
            _("Pain prevents me from sitting more than 10 minutes"),
            _("Pain prevents me from sitting at all"),
        ],
    ),
    (
        "standing",
        _("Section 6 – Standing"),
        [
            _("I can stand as long as I want without extra pain"),
            _("I can stand as long as I want but it gives me extra pain"),
            _("Pain prevents me from standing for more than 1 hour"),
            _("Pain prevents me from standing for more than 30 minutes"),
            _("Pain prevents me from standing for more than 10 minutes"),
            _("Pain prevents me from standing at all"),
        ],
    ),
    (
        "sleeping",
        _("Section 7 – Sleeping"),
        [
            _("My sleep is never disturbed by pain"),
            _("My sleep is occasionally disturbed by pain"),
            _("Because of pain I have less than 6 hours sleep"),
            _("Because of pain I have less than 4 hours sleep"),
            _("Because of pain I have less than 2 hours sleep"),
            _("Pain prevents me from sleeping at all"),
        ],
    ),
    (
        "sex_life",
        _("Section 8 – Sex life (if applicable)"),
        [
            _("My sex life is normal and causes no extra pain"),
            _("My sex life is normal but causes some extra pain"),
            _("My sex life is nearly normal but is very painful"),
            _("My sex life is severely restricted by pain"),
            _("My sex life is nearly absent because of pain"),
            _("Pain prevents any sex life at all"),
        ],
    ),
    (
        "social_life",
        _("Section 9 – Social life"),
        [
            _("My social life is normal and gives me no extra pain"),
            _("My social life is normal but increases the degree of pain"),
            _(
                "Pain has no significant effect on my social life apart from limiting my more "
                "energetic interests, e.g. sport"
            ),
            _("Pain has restricted my social life and I do not go out as often"),
            _("Pain has restricted my social life to my home"),
            _("I have no social life because of pain"),
        ],
    ),
    (
        "travelling",
        _("Section 10 – Travelling"),
        [
            _("I can travel anywhere without pain"),
            _("I can travel anywhere but it gives me extra pain"),
            _("Pain is bad but I manage journeys over two hours"),
            _("Pain restricts me to journeys of less than one hour"),
            _("Pain restricts me to short necessary journeys under 30 minutes"),
            _("Pain prevents me from travelling except to receive treatment"),
        ],
    ),
]


def odi_choices(section: str) -> list[tuple[int, str]]:
    for name, _heading, answers in ODI_SECTIONS:
        if name == section:
            return list(enumerate(answers))
    raise KeyError(section)


VAS_QUESTION = _(
    "How bad has your back pain been at its worst in the last week? "
    "0 = no pain, 100 = worst imaginable pain."
)
EQ_VAS_QUESTION = _(
    "How good or bad is your health today? 100 = the best health you can imagine, "
    "0 = the worst health you can imagine."
)
