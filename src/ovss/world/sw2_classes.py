"""ShapesWorld 2's vocabulary as data: 189 classes (18 stuff, 171 things) with synonyms and a
hierarchy, the contexts scenes are composed from, the benchmarks (class lists of several sizes
over the same scenes) and the base / novel split.

Things are drawn with Twemoji icons (CC-BY 4.0, see ``data/ICONS-LICENSE.md``); stuff has
procedural textures. Why contexts: real scenes are not random bags of classes; a kitchen holds
cups and bread, a street cars and traffic lights, so what co-occurs in captions co-occurs in
pixels, which is what the contrastive-concepts paper mines and what makes segmentation hard.
"""
from __future__ import annotations

import zlib

# One line a thing: name | icon (the emoji's Unicode name) | zone | category | synonyms.
# zone: where it is placed (ground: stands on the ground; sky: flies in the sky; wall: hangs on
# an indoor wall; water: floats on the sea; under: swims in the sea).
_THINGS = """
person | STANDING PERSON | ground | person | man, woman, people
child | CHILD | ground | person | kid
dog | DOG | ground | mammal | puppy
cat | CAT | ground | mammal | kitten
horse | HORSE | ground | mammal | pony
cow | COW | ground | mammal | cattle
sheep | SHEEP | ground | mammal | lamb
pig | PIG | ground | mammal | piglet
goat | GOAT | ground | mammal |
rabbit | RABBIT | ground | mammal | bunny
mouse | MOUSE | ground | mammal | rat
elephant | ELEPHANT | ground | mammal |
camel | DROMEDARY CAMEL | ground | mammal |
tiger | TIGER | ground | mammal |
leopard | LEOPARD | ground | mammal |
monkey | MONKEY | ground | mammal | ape
deer | DEER | ground | mammal |
rhinoceros | RHINOCEROS | ground | mammal | rhino
hippopotamus | HIPPOPOTAMUS | ground | mammal | hippo
chipmunk | CHIPMUNK | ground | mammal | squirrel
chicken | CHICKEN | ground | bird | hen
duck | DUCK | water | bird |
bird | BIRD | sky | bird | sparrow
eagle | EAGLE | sky | bird | hawk
owl | OWL | ground | bird |
parrot | PARROT | ground | bird |
flamingo | FLAMINGO | ground | bird |
swan | SWAN | water | bird |
penguin | PENGUIN | ground | bird |
dove | DOVE OF PEACE | sky | bird | pigeon
fish | FISH | under | sea animal |
tropical fish | TROPICAL FISH | under | sea animal |
blowfish | BLOWFISH | under | sea animal | pufferfish
dolphin | DOLPHIN | under | sea animal |
whale | SPOUTING WHALE | under | sea animal |
shark | SHARK | under | sea animal |
octopus | OCTOPUS | under | sea animal |
crab | CRAB | ground | sea animal |
shrimp | SHRIMP | under | sea animal | prawn
shell | SPIRAL SHELL | ground | sea animal | seashell
turtle | TURTLE | ground | reptile | tortoise
crocodile | CROCODILE | ground | reptile | alligator
snake | SNAKE | ground | reptile | serpent
lizard | LIZARD | ground | reptile |
butterfly | BUTTERFLY | sky | insect |
bee | HONEYBEE | sky | insect | honeybee
ladybug | LADY BEETLE | ground | insect | ladybird
snail | SNAIL | ground | insect |
car | AUTOMOBILE | ground | road vehicle | automobile
taxi | TAXI | ground | road vehicle | cab
police car | POLICE CAR | ground | road vehicle |
ambulance | AMBULANCE | ground | road vehicle |
fire engine | FIRE ENGINE | ground | road vehicle | fire truck
bus | BUS | ground | road vehicle | coach
truck | DELIVERY TRUCK | ground | road vehicle | lorry
tractor | TRACTOR | ground | road vehicle |
bicycle | BICYCLE | ground | road vehicle | bike
motorbike | RACING MOTORCYCLE | ground | road vehicle | motorcycle
scooter | MOTOR SCOOTER | ground | road vehicle | moped
train | HIGH-SPEED TRAIN | ground | rail vehicle | railway
locomotive | STEAM LOCOMOTIVE | ground | rail vehicle | steam engine
airplane | AIRPLANE | sky | air vehicle | aeroplane, plane
helicopter | HELICOPTER | sky | air vehicle |
rocket | ROCKET | sky | air vehicle |
boat | SAILBOAT | water | water vehicle | sailboat
speedboat | SPEEDBOAT | water | water vehicle | motorboat
ship | SHIP | water | water vehicle |
canoe | CANOE | water | water vehicle | kayak
chair | CHAIR | ground | furniture | seat
sofa | COUCH AND LAMP | ground | furniture | couch
bed | BED | ground | furniture |
toilet | TOILET | ground | bathroom item |
bathtub | BATHTUB | ground | bathroom item | bath
shower | SHOWER | wall | bathroom item |
soap | BAR OF SOAP | ground | bathroom item |
toilet paper | ROLL OF PAPER | ground | bathroom item |
sponge | SPONGE | ground | bathroom item |
toothbrush | TOOTHBRUSH | ground | bathroom item |
mirror | MIRROR | wall | furniture |
door | DOOR | wall | building part |
window | WINDOW | wall | building part |
clock | MANTELPIECE CLOCK | wall | furniture |
painting | FRAME WITH PICTURE | wall | furniture | framed picture
tv | TELEVISION | ground | electronics | television, monitor
laptop | PERSONAL COMPUTER | ground | electronics | notebook computer
computer | DESKTOP COMPUTER | ground | electronics | desktop
keyboard | KEYBOARD | ground | electronics |
printer | PRINTER | ground | electronics |
phone | MOBILE PHONE | ground | electronics | cellphone, smartphone
radio | RADIO | ground | electronics |
lamp | ELECTRIC LIGHT BULB | wall | electronics | light bulb
candle | CANDLE | ground | furniture |
guitar | GUITAR | ground | toy | 
teddy bear | TEDDY BEAR | ground | toy | teddy
balloon | BALLOON | sky | toy |
kite | KITE | sky | toy |
book | CLOSED BOOK | ground | office item |
pencil | PENCIL | ground | office item | pen
scissors | BLACK SCISSORS | ground | office item |
backpack | SCHOOL SATCHEL | ground | office item | schoolbag, bag
calendar | TEAR-OFF CALENDAR | wall | office item |
soccer ball | SOCCER BALL | ground | toy | football
basketball | BASKETBALL AND HOOP | ground | toy |
volleyball | VOLLEYBALL | ground | toy | beach ball
skateboard | SKATEBOARD | ground | toy |
sled | SLED | ground | toy | sledge
skis | SKI AND SKI BOOT | ground | toy | ski
snowman | SNOWMAN WITHOUT SNOW | ground | toy |
umbrella | UMBRELLA ON GROUND | ground | furniture | parasol
tent | TENT | ground | building |
bucket | BUCKET | ground | kitchenware | pail
teapot | TEAPOT | ground | kitchenware |
cup | HOT BEVERAGE | ground | kitchenware | mug, coffee
wine glass | WINE GLASS | ground | kitchenware | glass
bottle | BOTTLE WITH POPPING CORK | ground | kitchenware |
bowl | BOWL WITH SPOON | ground | kitchenware |
knife | HOCHO | ground | kitchenware |
frying pan | COOKING | ground | kitchenware | pan
drink | TROPICAL DRINK | ground | kitchenware | cocktail
apple | RED APPLE | ground | fruit |
banana | BANANA | ground | fruit |
grapes | GRAPES | ground | fruit |
watermelon | WATERMELON | ground | fruit | melon
strawberry | STRAWBERRY | ground | fruit |
cherries | CHERRIES | ground | fruit | cherry
pear | PEAR | ground | fruit |
lemon | LEMON | ground | fruit |
tangerine | TANGERINE | ground | fruit | mandarin
pineapple | PINEAPPLE | ground | fruit |
carrot | CARROT | ground | vegetable |
broccoli | BROCCOLI | ground | vegetable |
corn | EAR OF MAIZE | ground | vegetable | maize
tomato | TOMATO | ground | vegetable |
eggplant | AUBERGINE | ground | vegetable | aubergine
mushroom | MUSHROOM | ground | vegetable |
bread | BREAD | ground | meal | loaf
cheese | CHEESE WEDGE | ground | meal |
pizza | SLICE OF PIZZA | ground | meal |
hamburger | HAMBURGER | ground | meal | burger
cake | BIRTHDAY CAKE | ground | meal |
doughnut | DOUGHNUT | ground | meal | donut
ice cream | SOFT ICE CREAM | ground | meal |
tree | DECIDUOUS TREE | ground | tree |
pine tree | EVERGREEN TREE | ground | tree | fir
palm tree | PALM TREE | ground | tree | palm
cactus | CACTUS | ground | plant |
potted plant | POTTED PLANT | ground | plant | houseplant
sunflower | SUNFLOWER | ground | flower |
tulip | TULIP | ground | flower |
rose | ROSE | ground | flower |
hibiscus | HIBISCUS | ground | flower |
rock | ROCK | ground | plant | stone, boulder
log | WOOD | ground | plant | timber
house | HOUSE BUILDING | ground | building | home
office building | OFFICE BUILDING | ground | building | skyscraper, tower
church | CHURCH | ground | building |
castle | EUROPEAN CASTLE | ground | building |
school | SCHOOL | ground | building |
factory | FACTORY | ground | building |
fountain | FOUNTAIN | ground | street item |
traffic light | VERTICAL TRAFFIC LIGHT | ground | street item | traffic signal
stop sign | OCTAGONAL SIGN | ground | street item |
fuel pump | FUEL PUMP | ground | street item | gas pump
bus stop | BUS STOP | ground | street item |
construction sign | CONSTRUCTION SIGN | ground | street item | roadblock
mailbox | CLOSED MAILBOX WITH RAISED FLAG | ground | street item | postbox
sun | BLACK SUN WITH RAYS | sky | sky object |
cloud | CLOUD | sky | sky object |
moon | CRESCENT MOON | sky | sky object |
star | WHITE MEDIUM STAR | sky | sky object |
rainbow | RAINBOW | sky | sky object |
"""

THING_ICON: dict[str, str] = {}
THING_ZONE: dict[str, str] = {}
CATEGORY: dict[str, str] = {}
SYNONYMS2: dict[str, tuple[str, ...]] = {}
for _line in _THINGS.strip().splitlines():
    _name, _icon, _zone, _cat, _syn = (p.strip() for p in _line.split("|"))
    THING_ICON[_name], THING_ZONE[_name], CATEGORY[_name] = _icon, _zone, _cat
    SYNONYMS2[_name] = tuple(s.strip() for s in _syn.split(",") if s.strip())
THINGS: tuple[str, ...] = tuple(THING_ICON)

# Stuff: name -> (synonyms, category). Backdrops fill the top of a scene, grounds the bottom.
_STUFF = {
    "sky": ((), "sky"),
    "mountain": (("hill", "hills"), "landscape"),
    "forest": (("woods",), "landscape"),
    "building": (("facade",), "construction"),
    "wall": (("brick wall",), "construction"),
    "tiles": (("tiled wall",), "construction"),
    "wallpaper": ((), "construction"),
    "floor": (("tiled floor",), "floor covering"),
    "parquet": (("wooden floor",), "floor covering"),
    "carpet": (("rug",), "floor covering"),
    "road": (("street",), "ground"),
    "sidewalk": (("pavement",), "ground"),
    "grass": (("lawn",), "ground"),
    "field": (("wheat field", "crops"), "ground"),
    "dirt": (("soil", "mud"), "ground"),
    "sand": (("beach sand",), "ground"),
    "sea": (("water", "ocean"), "water body"),
    "snow": ((), "ground"),
}
STUFF2: tuple[str, ...] = tuple(_STUFF)
for _name, (_syn, _cat) in _STUFF.items():
    SYNONYMS2[_name], CATEGORY[_name] = _syn, _cat
CLASSES2: tuple[str, ...] = STUFF2 + THINGS
CLASS_INDEX2: dict[str, int] = {n: i for i, n in enumerate(CLASSES2)}

# The hierarchy's top: category -> super-category (class -> category is CATEGORY).
SUPER: dict[str, str] = {
    "person": "person", "mammal": "animal", "bird": "animal", "sea animal": "animal",
    "reptile": "animal", "insect": "animal", "road vehicle": "vehicle", "rail vehicle": "vehicle",
    "air vehicle": "vehicle", "water vehicle": "vehicle", "furniture": "indoor object",
    "bathroom item": "indoor object", "building part": "indoor object", "electronics": "indoor object",
    "office item": "indoor object", "kitchenware": "indoor object", "toy": "sports and toys",
    "fruit": "food", "vegetable": "food", "meal": "food", "tree": "plant", "plant": "plant",
    "flower": "plant", "building": "building", "street item": "street object",
    "sky object": "sky object", "sky": "stuff", "landscape": "stuff", "construction": "stuff",
    "floor covering": "stuff", "ground": "stuff", "water body": "stuff",
}


def sibling_negatives(exclude=(), per_class: int = 5) -> dict[str, list[str]]:
    """OpenDAS-style negative queries from the hierarchy: for each class, up to ``per_class``
    other classes of its category (in class order) that are not in ``exclude`` (the names a
    dataset queries): the world's own "similar but different" names, where OpenDAS asks an LLM."""
    banned = {x.lower() for x in exclude}
    return {c: [o for o in CLASSES2 if o != c and CATEGORY[o] == CATEGORY[c] and o not in banned][:per_class]
            for c in CLASSES2}


def ancestors(name: str) -> tuple[str, ...]:
    """A class's category and super-category, nearest first (the hierarchy's path to its root)."""
    cat = CATEGORY[name]
    return (cat,) if SUPER[cat] == cat else (cat, SUPER[cat])


# Contexts: backdrops (top band), far bands (optional, between), grounds (bottom bands), the
# things that occur there with their weights, and words captions use for the place.
CONTEXTS: dict[str, dict] = {
    "kitchen": dict(top=("tiles", "wallpaper", "wall"), far=(), ground=("floor", "parquet"), words=("kitchen",),
                    adjectives=("cozy", "modern", "bright", "small"),
                    things="teapot cup wine_glass bottle bowl knife frying_pan apple banana grapes lemon tangerine pear "
                           "tomato carrot broccoli eggplant bread cheese pizza cake doughnut cat chair window clock "
                           "potted_plant person mouse radio watermelon strawberry cherries pineapple hamburger"),
    "living room": dict(top=("wallpaper", "wall"), far=(), ground=("carpet", "parquet"), words=("living room", "lounge"),
                        adjectives=("cozy", "quiet", "tidy", "warm"),
                        things="sofa chair tv lamp painting clock window door potted_plant book guitar teddy_bear cat "
                               "dog person child laptop phone radio candle balloon cake bottle"),
    "bedroom": dict(top=("wallpaper",), far=(), ground=("carpet", "parquet"), words=("bedroom",),
                    adjectives=("cozy", "quiet", "dark", "tidy"),
                    things="bed teddy_bear lamp book clock painting window door cat dog child guitar backpack candle tv sofa chair"),
    "bathroom": dict(top=("tiles",), far=(), ground=("floor",), words=("bathroom",),
                     adjectives=("clean", "small", "white", "bright"),
                     things="toilet bathtub shower soap toilet_paper sponge toothbrush mirror door potted_plant duck window"),
    "office": dict(top=("wall", "wallpaper"), far=(), ground=("carpet", "floor"), words=("office", "classroom"),
                   adjectives=("busy", "quiet", "modern", "empty"),
                   things="computer laptop keyboard printer phone book pencil scissors backpack calendar chair clock "
                          "window potted_plant person cup lamp tv bottle"),
    "street": dict(top=("sky",), far=("building",), ground=("road", "sidewalk"), words=("city", "town", "downtown"),
                   adjectives=("busy", "quiet", "sunny", "wide"),
                   things="car car taxi police_car ambulance fire_engine bus truck bicycle motorbike scooter traffic_light "
                          "stop_sign fuel_pump bus_stop construction_sign mailbox person person child dog dove house "
                          "office_building church school factory tree airplane helicopter cloud sun train bird umbrella"),
    "beach": dict(top=("sky",), far=(), ground=("sea", "sand"), words=("beach", "seaside", "coast"),
                  adjectives=("sunny", "hot", "crowded", "calm"),
                  things="umbrella shell crab person child volleyball palm_tree boat speedboat ship canoe bucket "
                         "ice_cream drink sun cloud bird flamingo turtle dolphin dog chair bottle airplane"),
    "farm": dict(top=("sky",), far=("forest", "mountain"), ground=("grass", "field", "dirt"), words=("farm", "countryside", "meadow"),
                 adjectives=("green", "sunny", "rural", "peaceful"),
                 things="cow sheep horse pig goat chicken duck tractor tree house sunflower tulip rabbit dog person "
                        "butterfly bee corn carrot tent log rock train locomotive sun cloud bird kite castle rainbow airplane"),
    "park": dict(top=("sky",), far=("building", "forest"), ground=("grass", "dirt"), words=("park", "garden"),
                 adjectives=("green", "sunny", "quiet", "public"),
                 things="tree pine_tree fountain rose tulip hibiscus butterfly bee ladybug snail dog person child "
                        "bicycle kite balloon soccer_ball basketball chipmunk dove bird skateboard sun cloud horse airplane"),
    "snow": dict(top=("sky",), far=("mountain",), ground=("snow",), words=("winter", "snowfield", "tundra"),
                 adjectives=("cold", "white", "snowy", "frozen"),
                 things="snowman sled skis pine_tree penguin person child house log rock deer cloud sun moon star dog"),
    "underwater": dict(top=("sea",), far=(), ground=("sand",), words=("reef", "seabed", "lagoon"),
                       adjectives=("deep", "blue", "calm", "dark"),
                       things="fish fish tropical_fish blowfish dolphin whale shark octopus crab shrimp shell turtle rock"),
    "lake": dict(top=("sky",), far=("forest", "mountain"), ground=("sea", "grass"), words=("harbour", "river", "pond"),
                 adjectives=("calm", "quiet", "misty", "blue"),
                 things="boat speedboat ship canoe duck swan person tree pine_tree house dove bird cloud sun fish dog airplane"),
    "desert": dict(top=("sky",), far=("mountain",), ground=("sand", "dirt"), words=("desert", "savanna"),
                   adjectives=("hot", "dry", "empty", "wild"),
                   things="camel cactus elephant rhinoceros hippopotamus leopard snake lizard rock palm_tree tent sun "
                          "cloud eagle rocket motorbike person"),
    "jungle": dict(top=("sky",), far=("forest",), ground=("grass", "dirt"), words=("jungle", "rainforest"),
                   adjectives=("wild", "green", "dense", "humid"),
                   things="monkey parrot tiger leopard snake crocodile lizard tree palm_tree mushroom log butterfly "
                          "deer owl hibiscus"),
}
for _ctx in CONTEXTS.values():
    _ctx["things"] = tuple(t.replace("_", " ") for t in _ctx["things"].split())

# Things that come in several colours: their icon's channels are permuted (a red car, a blue car).
RECOLOR: frozenset[str] = frozenset(
    "car bus truck bicycle motorbike scooter boat speedboat canoe chair sofa balloon kite backpack book "
    "umbrella bucket tulip rose cup bowl skateboard sled tent bed".split() + ["teddy bear"])

STYLES2: tuple[str, ...] = ("default", "night", "sketch", "painting")

# Benchmarks over the same scenes, as VOC20 / Context59 / ADE150 over the same photos: a class
# list; pixels of classes outside it are ignored (255), as VOC20 ignores its background.
_VOC_LIKE = ("person", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "potted plant",
             "dog", "horse", "motorbike", "sheep", "sofa", "train", "tv", "airplane", "umbrella")
_CONTEXT_LIKE = _VOC_LIKE + (
    "sky", "mountain", "forest", "building", "wall", "tiles", "wallpaper", "floor", "parquet", "carpet",
    "road", "sidewalk", "grass", "field", "dirt", "sand", "sea", "snow",
    "tree", "house", "truck", "window", "door", "cup", "book", "laptop", "clock", "rock", "cloud",
    "sun", "fish", "duck", "pig", "elephant", "tulip", "painting", "bed",
    "toilet", "bathtub",
)
BENCHMARKS: dict[str, tuple[str, ...]] = {
    "sw2-20": _VOC_LIKE,
    "sw2-59": _CONTEXT_LIKE,
    "sw2-150": STUFF2 + tuple(t for t in THINGS if t not in ("police car", "fire engine", "locomotive", "speedboat",
                                                          "tropical fish", "blowfish", "leopard", "chipmunk",
                                                          "dove", "hibiscus", "pine tree", "office building",
                                                          "construction sign", "bus stop", "fuel pump", "scissors",
                                                          "toothbrush", "sponge", "soap", "toilet paper",
                                                          "calendar", "printer", "radio", "candle", "canoe",
                                                          "skis", "sled", "volleyball", "basketball", "shrimp",
                                                          "lizard", "hippopotamus", "rhinoceros", "mouse",
                                                          "goat", "owl", "parrot", "swan", "flamingo")),
    "sw2-all": CLASSES2,
}
DEFAULT_BENCHMARK = "sw2-20"


def is_novel(name: str) -> bool:
    """The base / novel split: a fixed third of the classes (by a hash of the name, so adding a
    class never moves another), stuff and things alike."""
    return zlib.crc32(name.encode("utf-8")) % 3 == 0


NOVEL_CLASSES2: tuple[str, ...] = tuple(c for c in CLASSES2 if is_novel(c))
BASE_CLASSES2: tuple[str, ...] = tuple(c for c in CLASSES2 if not is_novel(c))


def _check() -> None:
    """Fail at import time if the tables disagree."""
    assert len(set(CLASSES2)) == len(CLASSES2) and len(CLASSES2) < 255
    for ctx in CONTEXTS.values():
        assert set(ctx["things"]) <= set(THINGS), set(ctx["things"]) - set(THINGS)
        assert set(ctx["top"]) | set(ctx["far"]) | set(ctx["ground"]) <= set(STUFF2)
    for bench in BENCHMARKS.values():
        assert len(set(bench)) == len(bench) and set(bench) <= set(CLASSES2), set(bench) - set(CLASSES2)
    assert RECOLOR <= set(THINGS)
    for c in CLASSES2:
        assert CATEGORY[c] in SUPER, c
    assert set(THING_ZONE.values()) <= {"ground", "sky", "wall", "water", "under"}


_check()
