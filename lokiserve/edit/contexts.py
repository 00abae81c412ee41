"""Generic contexts for a subject and generic text that mentions none.

ROME computes a subject's key as the average over many random prefixes,
because one prompt's representation of the subject also carries that
prompt's wording. The writer does the same for its fitted keys: the
subject, placed in these neutral contexts, gives the positives that teach
a key *the subject* rather than one sentence (measured on SmolLM2: keys
fitted to the prompt and one paraphrase alone fired on neither the held-out
paraphrase nor, wrongly, only on those two sentences).

``UNRELATED`` is text the project writes itself, with no fact subject in
it: ``UNRELATED_NEGATIVES`` are negatives while keys are fitted,
``UNRELATED_HELD_OUT`` is held out to measure the next-token distribution
before and after an edit.
"""

from __future__ import annotations

SUBJECT_CONTEXTS = (
    "About {s}",
    "Here is a fact about {s}",
    "Tell me about {s}",
    "I read a short article about {s}",
    "Question: what do you know about {s}",
    "The topic of today's lesson is {s}",
    "Notes on {s}",
    "Many people have heard of {s}",
    "A quiz question about {s}",
    "Some facts: {s}",
    "We talked about {s}",
    "In the encyclopedia entry on {s}",
    "Everyone has heard of {s}",
    "Here is what I learned about {s}",
    "Trivia: {s}",
)

# Negatives while keys are fitted: everyday text of many kinds, and above
# all many ways to open a sentence. A sentence's first positions carry little
# context, so their queries are the easiest for a fitted key to fire on
# (measured on SmolLM2, 100 edits: the only unrelated position any key read
# was a held-out sentence's second token, with 16 negative sentences).
UNRELATED_NEGATIVES = (
    "The recipe calls for two cups of flour, a pinch of salt and some warm water.",
    "She opened the window because the room was getting too warm.",
    "To install the package, run the setup script and then restart the terminal.",
    "The meeting has been moved to Thursday afternoon at three o'clock.",
    "He likes to go running in the park early in the morning.",
    "A good night's sleep helps you concentrate the next day.",
    "The train was late again, so we decided to take a taxi instead.",
    "Please remember to water the plants while I am away.",
    "The children built a small castle out of sand and shells.",
    "This function returns the sum of all the numbers in the list.",
    "It rained all weekend, and the garden finally looks green again.",
    "Our team won the match after a long and difficult second half.",
    "The library is open from nine in the morning until eight at night.",
    "I usually drink a cup of tea before I start working.",
    "The new phone has a bigger screen and a better camera.",
    "Add the onions to the pan and cook them until they are soft.",
    "My phone battery died halfway through the call.",
    "Your order has shipped and should arrive within three days.",
    "His handwriting is so small that nobody can read it.",
    "Her garden is full of tomatoes and bright yellow flowers.",
    "Our neighbours are painting their fence a light shade of blue.",
    "Their car broke down on the way to the beach.",
    "My grandmother bakes bread every Saturday morning.",
    "Your password must contain at least eight characters.",
    "I think we should leave before the traffic gets bad.",
    "We need more chairs for the party on Friday.",
    "You can find the spare key under the flower pot.",
    "They spent the whole evening playing board games.",
    "It is hard to focus when the office is this noisy.",
    "If the light turns red, stop and wait for the signal.",
    "When the water boils, add the pasta and stir it gently.",
    "After lunch we took a long walk along the river.",
    "Before you leave, please switch off all the lights.",
    "Yesterday I finally cleaned out the garage.",
    "Tomorrow will be cloudy with a chance of light rain.",
    "Last week the printer jammed three times in one day.",
    "Every morning the dog waits by the door for its walk.",
    "Sometimes the simplest answer is the right one.",
    "Honestly, I did not expect the test to be so easy.",
    "Hello, and welcome to the weekly team update.",
    "Dear customer, thank you for choosing our service.",
    "Hi everyone, the kitchen will be closed for cleaning today.",
    "Can you help me carry these boxes upstairs?",
    "Why does the milk always go bad so quickly?",
    "How long should I boil an egg for a soft yolk?",
    "What time does the last bus leave tonight?",
    "Is there any coffee left in the pot?",
    "Do you want to share a pizza later?",
    "Step one: unplug the device and wait ten seconds.",
    "Note: the elevator is out of order until Monday.",
    "Warning: the floor is wet near the entrance.",
    "Chapter two begins with a storm at sea.",
    "Ingredients: eggs, butter, sugar and a little vanilla.",
    "Total: four items, twelve dollars and fifty cents.",
    "Room 12 is on the second floor, next to the stairs.",
    "At 7 a.m. the alarm rang, but nobody got up.",
    "In the morning the lake was completely still.",
    "On weekends the market sells fresh fruit and cheese.",
    "For dessert we had apple pie with whipped cream.",
    "With a little practice, anyone can learn to juggle.",
    "Without a map, we got lost twice on the way.",
    "Because of the snow, school was cancelled today.",
    "Although it was late, the shop was still open.",
    "While the kettle heated up, she read the newspaper.",
    "So far the new schedule seems to work well.",
    "Then the lights went out and everyone laughed.",
    "First, preheat the oven to a moderate temperature.",
    "Finally, the package arrived after two weeks.",
    "The old bicycle needs new tyres and a better seat.",
    "A small bird landed on the balcony railing.",
    "An empty box was left outside the front door.",
    "Some of the cookies were burnt on the bottom.",
    "Most people prefer a window seat on long trips.",
    "All the tickets for the concert sold out in an hour.",
    "Nobody remembered to bring the birthday candles.",
    "Everyone clapped when the music finally started.",
    "Two friends shared an umbrella on the walk home.",
    "Three small puppies were sleeping in a basket.",
    "import os\nprint(os.getcwd())",
    "for i in range(10):\n    print(i)",
    "x = [1, 2, 3]\ny = sum(x)",
    "SELECT name FROM users WHERE age > 30;",
    "<div class=\"header\">Welcome</div>",
    "1. Buy milk\n2. Call the plumber\n3. Pay the rent",
    "- apples\n- bread\n- soap",
    "Q: Where are my glasses?\nA: On your head.",
    "User: Can you set a timer?\nAssistant: Sure, for how long?",
    "Good morning! Did you sleep well?",
    "Wow, that was a really long meeting.",
    "Okay, let us try that one more time.",
    "Yes, the parcel came this afternoon.",
    "No, I have not seen the remote anywhere.",
    "Please sign here and write today's date.",
    "Keep the receipt in case you need to return it.",
    "Don't forget to lock the back door tonight.",
    "Let the soup simmer for twenty minutes.",
)

# Held out from fitting: the next-token distribution on these is measured
# before and after a write (the report's unrelated top-1 and KL).
UNRELATED_HELD_OUT = (
    "The museum offers free entry on the first Sunday of every month.",
    "My brother is learning to play the guitar this year.",
    "Write a short story about a dog who finds a lost key.",
    "The store closes early on holidays, so plan your shopping ahead.",
    "Once upon a time, a small boat sailed across a quiet lake.",
    "The price of the tickets went up by ten percent this season.",
    "Turn left at the second traffic light and park behind the building.",
    "The teacher asked the students to read the first chapter at home.",
    "def add(a, b):\n    return a + b",
    "Thank you for your message; I will reply as soon as I can.",
    "The cat slept on the warm windowsill for most of the afternoon.",
    "Mix the paint well before you apply the first coat to the wall.",
    "The bus stops right in front of the old post office.",
    "He forgot his umbrella and came home completely wet.",
    "The report is due at the end of the month, so start early.",
    "We watched a funny movie and ate far too much popcorn.",
)

UNRELATED = UNRELATED_NEGATIVES + UNRELATED_HELD_OUT


def subject_contexts(subject: str) -> list[str]:
    return [c.format(s=subject) for c in SUBJECT_CONTEXTS]


def unrelated_split() -> tuple[list[str], list[str]]:
    """(negatives for fitting, held out for measuring)."""
    return list(UNRELATED_NEGATIVES), list(UNRELATED_HELD_OUT)


__all__ = ["SUBJECT_CONTEXTS", "UNRELATED", "UNRELATED_HELD_OUT", "UNRELATED_NEGATIVES", "subject_contexts", "unrelated_split"]
