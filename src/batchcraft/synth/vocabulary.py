"""Topic vocabularies of the synthetic corpus: concepts and slot fillers per topic.

The vocabulary is written as a compact text block (one ``field: a | b | c`` line per slot)
rather than as Python lists, so that each topic reads like a small glossary and stays
on one screen. Ten clearly separated topics keep sentence embeddings clustered by topic;
many fillers per slot keep distinct rows from looking like duplicates of each other.
"""

from __future__ import annotations

from dataclasses import dataclass

_TOPIC_TEXT = """
[cooking]
concepts: sourdough bread | knife skills | spice blends | slow braising | food safety
agents: the head chef | a home cook | my grandmother | the pastry team | a young line cook | the restaurant owner | a food blogger | the culinary students
verbs: prepared | seasoned | tested | simmered | carefully plated | reworked | roasted | served
objects: a pot of lentil soup | the roast chicken | a tray of garlic focaccia | the tomato sauce | a batch of butter croissants | the mushroom risotto | a pan of caramelized onions | the lemon tart | a bowl of fresh pasta | the beef stew
details: with smoked paprika | using leftover vegetables | from an old family recipe | with a crunchy herb crust | for twelve hungry guests | without any added sugar | with a splash of white wine | using only local produce | with homemade stock | for the first time in years
places: in a small kitchen | at the weekend market | for a family dinner | in the cast iron skillet | at the busy bistro | over an open fire | for the holiday buffet | during a cooking class
outcomes: tasted far richer than expected | came out slightly burnt on the bottom | needed more salt and a splash of vinegar | smelled wonderful after an hour in the oven | was eaten within minutes | kept well in the fridge for days | stayed tender and juicy | won praise from every guest at the table
answers: Let the dough rest overnight so the flavour can develop. | Taste as you go and adjust the seasoning at the end. | A sharp knife is safer than a dull one. | Keep raw meat away from vegetables on the cutting board. | Toast whole spices in a dry pan before grinding them. | Low heat and patience make tough cuts of meat tender. | Cool leftovers quickly and refrigerate them within two hours. | A little butter stirred in at the end gives the sauce a glossy finish.

[astronomy]
concepts: telescopes | black holes | exoplanets | solar eclipse | galaxy formation
agents: the observatory staff | an amateur stargazer | the astrophysics professor | a group of graduate students | the planetarium guide | a retired engineer with a backyard dome | the mission scientists | the night sky photographer
verbs: observed | photographed | measured | tracked | catalogued | analysed | modelled | mapped
objects: the rings of Saturn | a faint spiral galaxy | the moons of Jupiter | a distant quasar | the Orion nebula | a bright comet tail | the surface of Mars | a cluster of young blue stars | the spectrum of a red dwarf | the Andromeda galaxy
details: with an infrared camera | using archival plates from the last century | with a cheap pair of binoculars | over several consecutive nights | with adaptive optics switched on | for a student research project | while the moon was still below the horizon | using a narrowband hydrogen filter | for a public outreach evening | with help from a citizen science network
places: from a dark mountain site | through the large reflector | with the orbiting space telescope | on a cold clear winter night | from the desert observatory | with a radio dish array | during the meteor shower | far from the city lights
outcomes: revealed structure nobody had recorded before | turned out to be much brighter than the catalogue listed | showed a slight wobble caused by an unseen companion | faded after a few hours near the horizon | matched the predictions of the gravity model | looked blurry because of atmospheric turbulence | held a signal that pointed to water vapour | shifted toward the red end of the spectrum
answers: A larger aperture gathers more light and shows fainter objects. | Nothing escapes a black hole once it crosses the event horizon. | Most exoplanets are found by the dip in starlight as they transit their star. | Never look at the sun without a certified solar filter. | Galaxies grow by merging with smaller neighbours over billions of years. | Let your eyes adapt to the dark for twenty minutes before observing. | Redshift tells us how fast a galaxy is moving away from us. | Dark skies matter more than magnification for deep sky viewing.

[football]
concepts: penalty kicks | offside rule | transfer market | youth academy | tactical formation
agents: the team captain | the veteran goalkeeper | a young striker | the head coach | the club director | a talented winger | the referee | the local supporters
verbs: defended | attacked | trained | celebrated | criticised | scouted | substituted | pressed
objects: the final minutes of the derby | the league title race | a free kick near the box | the counterattack down the left | the second half | the cup semifinal | a corner routine | the opposing midfield | the away match | a rainy training session
details: with only ten men on the field | after a long injury layoff | under heavy pressure from the visitors | with a new signing in the lineup | despite a painful ankle knock | against their fiercest rivals | with the title on the line | after a week of tactical drills | in a snowstorm | without their regular captain
places: at the packed home stadium | on a muddy pitch | in the championship final | during the summer tournament | in front of a sold out crowd | at the training ground | during extra time | in the relegation battle
outcomes: ended in a dramatic late equaliser | left the fans chanting long after the whistle | was decided by a controversial video review | showed how much the squad had improved | cost the team three valuable points | led to a red card for a reckless tackle | produced the goal of the season | exposed weaknesses in the back four
answers: The striker should pick a corner and strike the penalty with confidence. | A player is offside if closer to the goal line than the second last defender when the ball is played. | Clubs often overpay for strikers late in the transfer window. | A good academy turns local teenagers into first team players. | A back three gives the wing backs freedom to push forward. | High pressing wins the ball back close to the opponent's goal. | Set pieces decide a surprising number of tight matches. | Rotation keeps legs fresh during a crowded fixture list.

[finance]
concepts: interest rates | stock market | inflation | retirement savings | credit risk
agents: the central bank | a cautious investor | the portfolio manager | a small business owner | the pension fund | the bond traders | a financial analyst | the board of directors
verbs: raised | reviewed | hedged | rebalanced | forecast | borrowed | audited | diversified
objects: the quarterly earnings report | a portfolio of index funds | the mortgage payments | the corporate bond yields | the annual budget | a loan for new equipment | the currency exposure | the dividend policy | the household debt | the technology shares
details: using a new risk model | with borrowed money | for the third quarter in a row | despite warnings from the auditors | with a long term view | for a group of retired teachers | after a surprise profit warning | using futures contracts | with an eye on the exchange rate | while the dollar weakened
places: after a volatile trading week | ahead of the policy meeting | during the recession | at the end of the fiscal year | in a rising rate environment | amid fears of a banking crisis | before the company went public | in the emerging markets
outcomes: lost nearly a fifth of its value | beat the analysts' expectations by a wide margin | put pressure on household budgets | pushed borrowing costs to a ten year high | calmed nervous shareholders | left the balance sheet stronger than before | triggered a wave of selling | barely kept pace with rising prices
answers: Higher rates make borrowing more expensive and saving more attractive. | Diversification lowers risk without necessarily lowering expected returns. | Inflation quietly erodes the purchasing power of cash. | Start saving for retirement early so compound growth can do the work. | Lenders charge riskier borrowers a higher spread. | Keep an emergency fund of several months of expenses. | Index funds keep fees low and track the whole market. | Read the cash flow statement, not only the profit figure.

[medicine]
concepts: vaccination | blood pressure | antibiotic resistance | clinical trials | mental health
agents: the family doctor | a nurse practitioner | the hospital pharmacist | the cardiology team | a medical student | the infectious disease specialist | the emergency physician | the research nurses
verbs: diagnosed | treated | monitored | prescribed medication for | examined | screened | referred | vaccinated
objects: an elderly patient with chest pain | a child with a persistent cough | the outbreak of seasonal flu | a patient recovering from surgery | the chronic kidney disease cases | a runner with a knee injury | the diabetic patients | a woman with severe migraines | the ward of pneumonia cases | a teenager with asthma
details: with a new generation of drugs | following updated national guidelines | despite a shortage of beds | with the help of a translator | using a portable ultrasound scanner | after a long wait for test results | with strict infection control measures | for the second time this year | using telemedicine video calls | with support from the patient's family
places: in the busy emergency room | at the rural clinic | during the night shift | in the intensive care unit | at a community health fair | in the outpatient ward | during a routine checkup | at the university hospital
outcomes: improved steadily over the following week | required a second course of treatment | responded well to a lower dose | showed early signs of infection | was discharged after three days | needed closer monitoring of kidney function | reported fewer symptoms after a month | had to be transferred to a specialist centre
answers: Vaccines train the immune system to recognise a pathogen before infection. | Cutting salt and exercising regularly both lower blood pressure. | Finish the full course of antibiotics unless your doctor says otherwise. | Randomised controlled trials are the strongest evidence for a treatment. | Talking therapy helps many people with anxiety and depression. | Measure blood pressure at the same time each day for a fair comparison. | Wash hands thoroughly to stop infections spreading in hospitals. | Tell your pharmacist about every medicine you take to avoid interactions.

[programming]
concepts: unit testing | memory leaks | code review | database indexing | concurrency
agents: the backend developer | a junior programmer | the open source maintainer | the site reliability engineer | the data engineering team | a freelance web developer | the security auditor | the compiler engineers
verbs: refactored | debugged | profiled | deployed | rewrote | documented | benchmarked | patched
objects: the legacy payment service | a slow SQL query | the authentication module | the mobile app's build pipeline | a race condition in the job scheduler | the REST API | the caching layer | a flaky integration test | the command line parser | the garbage collector settings
details: with a new profiling tool | written in Rust | after a dependency upgrade | using property based tests | behind a feature flag | with half the original code | across three microservices | after a week of pair programming | using an async event loop | for the open source community
places: before the Friday release | in the production cluster | during a late night incident | on the continuous integration server | in a pull request | in the staging environment | during the hackathon | inside a Docker container
outcomes: ran ten times faster after the change | crashed under heavy load | stopped leaking memory overnight | broke two downstream services | passed every check on the first try | exposed a subtle off by one error | used half the CPU it had before | needed a rollback within an hour
answers: Write a failing test first, then make it pass. | Profile before optimising; the bottleneck is rarely where you expect. | An index on the filter column turns a full scan into a quick lookup. | Small pull requests get faster and more careful reviews. | Guard shared state with a lock or avoid sharing it at all. | Release resources in a finally block or a context manager. | Pin dependency versions so builds are reproducible. | Log enough context to debug a failure without attaching a debugger.

[gardening]
concepts: composting | seed starting | pruning roses | soil acidity | pest control
agents: the allotment gardener | my neighbour | the botanical garden volunteers | a retired schoolteacher | the landscape designer | the community garden group | a beginner gardener | the nursery owner
verbs: planted | pruned | watered | mulched | repotted | harvested | fertilised | transplanted
objects: the tomato seedlings | a row of climbing beans | the old apple tree | a bed of tulip bulbs | the potted herbs | the strawberry patch | a hedge of lavender | the pumpkin vines | the raised vegetable beds | a clump of rhubarb
details: with homemade compost | using rainwater from the barrel | under a fleece cover | with a layer of bark mulch | grown from heirloom seed | beside the pond | despite the sandy soil | with bamboo supports | after a wet and mild winter | using organic fertiliser
places: in early spring | in the greenhouse | along the south facing wall | after the first frost | in heavy clay soil | on the sunny balcony | before the summer drought | in the shady corner of the yard
outcomes: produced a huge crop by late summer | wilted during the heatwave | was attacked by slugs overnight | flowered weeks earlier than usual | grew back stronger the following year | turned yellow from too much water | attracted bees and butterflies all season | needed staking against the wind
answers: Mix green and brown material for a compost heap that does not smell. | Start seeds indoors six weeks before the last frost. | Prune roses just above an outward facing bud. | Blueberries need acidic soil to thrive. | Encourage ladybirds, which eat aphids for you. | Water deeply and less often to grow deep roots. | Rotate crops each year to keep soil diseases down. | A layer of mulch keeps moisture in and weeds out.

[music]
concepts: jazz improvisation | music theory | concert tickets | guitar chords | orchestra rehearsal
agents: the string quartet | a self taught guitarist | the conductor | the jazz trio | a piano teacher | the indie band | the choir director | a session drummer
verbs: rehearsed | recorded | composed | arranged | performed | transcribed | remixed | tuned
objects: a slow blues in B flat | the second movement of the symphony | an old folk ballad | the new album's title track | a Bach fugue | the drum groove for the chorus | a film score theme | the encore medley | a bossa nova standard | the opening overture
details: with a borrowed cello | in an unusual time signature | for a charity fundraiser | with a new horn section | on a vintage analogue synthesiser | with the audience singing along | after only one rehearsal | in a lower key than usual | with a guest singer from Brazil | using nothing but an acoustic guitar
places: in a tiny basement club | at the summer music festival | in the recording studio | at the packed concert hall | during a late night jam session | on the radio | in the school auditorium | on a street corner downtown
outcomes: earned a standing ovation | sounded out of tune in the upper register | drifted into a long improvised solo | went viral after the livestream | needed another take to get the tempo right | moved several listeners to tears | sold out within an hour | blended the horns and strings beautifully
answers: Learn the melody first, then improvise around the chord tones. | A major scale follows the pattern whole whole half whole whole whole half. | Buy tickets from the official box office to avoid inflated resale prices. | Practise chord changes slowly until they are clean, then speed up. | Sectional rehearsals fix problems faster than full run throughs. | Listening to recordings trains the ear as much as playing does. | Tune every string to a reference pitch before the performance. | A metronome exposes rushing and dragging that you cannot hear yourself.

[travel]
concepts: budget airlines | travel insurance | visa requirements | hiking trails | hostel stays
agents: the backpackers | a family of four | the tour guide | a solo traveller | the honeymoon couple | a travel writer | the school exchange group | the cruise passengers
verbs: explored | booked | visited | crossed | photographed the views of | toured | wandered through | stayed near
objects: the old town of Lisbon | a remote island in Greece | the night train to Vienna | the temples of Kyoto | a glacier in Iceland | the markets of Marrakech | the coastal road in Portugal | the rice terraces in Bali | the canals of Amsterdam | a national park in Canada
details: with a local guide | on rented bicycles | with two small children in tow | by overnight ferry | on a shoestring budget | with a phrasebook and a paper map | during a heatwave | with friends from university | by hitchhiking most of the way | while working remotely
places: on a tight budget | during the low season | after a delayed connecting flight | on a week long road trip | with only a carry on bag | during a public holiday | on their first trip abroad | with a rented camper van
outcomes: turned into the highlight of the whole journey | was far more crowded than the guidebook suggested | cost almost twice the planned amount | left them with blistered feet and great memories | was cancelled because of a storm | felt peaceful early in the morning | required a long queue at passport control | offered stunning views at sunset
answers: Check the baggage allowance before booking a cheap flight. | Travel insurance pays for itself the first time a flight is cancelled. | Apply for a visa well before departure; processing can take weeks. | Carry water, a map and a rain jacket on every mountain trail. | Read recent reviews and check the location before booking a hostel. | Keep digital copies of your passport and tickets. | Travelling in shoulder season means fewer crowds and lower prices. | Learn a few local phrases; people appreciate the effort.

[law]
concepts: civil litigation | intellectual property | criminal trials | tenant rights | data privacy
agents: the defence lawyer | a district judge | the prosecution team | a legal aid volunteer | the appeals court | the corporate counsel | a paralegal | the jury
verbs: challenged | reviewed | drafted | argued | appealed | overturned | settled | cited
objects: the software licensing agreement | a wrongful dismissal claim | the patent infringement case | the eviction notice | a murder conviction | the merger contract | the privacy policy of the app | a copyright complaint about a song | the will of a wealthy landowner | the zoning decision
details: with a team of junior associates | under enormous media scrutiny | using newly discovered emails | for a group of small tenants | on behalf of a famous musician | despite a tight filing deadline | with help from expert witnesses | on constitutional grounds | for a local charity | in a closed session
places: in the high court | before the tribunal | during the cross examination | at the closing hearing | after months of negotiation | in a landmark ruling | under the new regulation | in front of a packed public gallery
outcomes: set a precedent for similar cases | was dismissed on a technicality | ended in an out of court settlement | resulted in a substantial fine | was sent back for a retrial | left both parties unhappy | hinged on a single email as evidence | took nearly three years to resolve
answers: Put every agreement in writing and keep signed copies. | Register a trademark before launching the brand publicly. | Everyone accused of a crime is presumed innocent until proven guilty. | A landlord must give proper written notice before ending a tenancy. | Collect only the personal data you need and say how you use it. | Read the termination clause before signing any contract. | Keep records of dates and conversations when a dispute starts. | A judge can only rule on the evidence presented in court.
"""

_SLOTS = ("concepts", "agents", "verbs", "objects", "details", "places", "outcomes", "answers")


@dataclass(frozen=True)
class Topic:
    """The vocabulary of one topic.

    Attributes:
        name: Short topic name, e.g. ``"cooking"``.
        concepts: Concept names that belong to the topic (short noun phrases).
        agents: Sentence subjects (people or organisations).
        verbs: Past-tense verb phrases that fit every object of the topic.
        objects: Noun phrases the verbs act on.
        details: Phrases that qualify the object in the first sentence of a row.
        places: Prepositional phrases setting the scene.
        outcomes: Verb phrases describing what happened to an object.
        answers: One-sentence responses used for the paired ``answer`` field.
    """

    name: str
    concepts: tuple[str, ...]
    agents: tuple[str, ...]
    verbs: tuple[str, ...]
    objects: tuple[str, ...]
    details: tuple[str, ...]
    places: tuple[str, ...]
    outcomes: tuple[str, ...]
    answers: tuple[str, ...]


def _parse_topics(text: str) -> tuple[Topic, ...]:
    topics: list[Topic] = []
    for block in text.strip().split("\n\n"):
        header, *lines = block.strip().splitlines()
        fields: dict[str, tuple[str, ...]] = {}
        for line in lines:
            key, _, values = line.partition(":")
            fields[key.strip()] = tuple(value.strip() for value in values.split("|"))
        assert tuple(fields) == _SLOTS, f"topic {header} has fields {tuple(fields)}"
        topics.append(Topic(name=header.strip("[]"), **fields))
    return tuple(topics)


TOPICS: tuple[Topic, ...] = _parse_topics(_TOPIC_TEXT)
"""The topics of the synthetic corpus, in a fixed order."""


def _concepts_by_rank(topics: tuple[Topic, ...]) -> tuple[str, ...]:
    # Interleave topics so that the head of the Zipf distribution is spread over
    # topics: rank r is concept r // num_topics of topic r % num_topics.
    per_topic = len(topics[0].concepts)
    return tuple(topic.concepts[index] for index in range(per_topic) for topic in topics)


CONCEPTS_BY_RANK: tuple[str, ...] = _concepts_by_rank(TOPICS)
"""All concept names, most frequent first (rank order of the Zipf distribution)."""

TOPIC_OF_CONCEPT: dict[str, int] = {
    concept: topic_index for topic_index, topic in enumerate(TOPICS) for concept in topic.concepts
}
"""Index into TOPICS of the topic each concept belongs to."""

assert len(TOPIC_OF_CONCEPT) == len(CONCEPTS_BY_RANK), "concept names must be unique"
