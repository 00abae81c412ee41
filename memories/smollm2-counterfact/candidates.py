"""Hand-written CounterFact-style candidate facts for SmolLM2-135M-Instruct.

Everything here was written by hand (no downloaded data set, no model hub):
per relation, a main prompt template, paraphrase templates (each puts a short
neutral phrase before the subject, as CounterFact's paraphrases do), a table
of ``subject | true answer | counterfactual answer`` rows and a small pool of
``subject | answer`` neighbour facts (other subjects with the same relation,
never candidates themselves, so a neighbour is never an edited prompt).

``build.py`` greedy-checks every candidate on the converted model and keeps
the ones the model already answers correctly (main prompt, both paraphrases,
both neighbours).

Conventions:

* ``{s}`` in a template is the subject. A row subject written with a leading
  lowercase ``the `` (``the Eiffel Tower``) takes the article outside the
  subject: ``The`` at the start of a sentence, ``the`` elsewhere; the subject
  itself is then ``Eiffel Tower``. A capitalised ``The`` (``The Great
  Gatsby``) is part of the subject.
* Answers have no leading space: prompt + " " + answer is the fact.
* Candidate ``i`` of a relation gets paraphrase templates ``i`` and ``i + 1``
  (mod their number) and neighbours ``i`` and ``i + 1`` (mod the pool size).
* ``active=False`` relations are kept as written but not expanded: the model
  (135M parameters) almost never answers their main prompts (see README.md).

``CANDIDATES`` is the expanded list of dicts with keys ``subject``,
``relation``, ``prompt``, ``true``, ``new``, ``paraphrases`` (2 strings) and
``neighbors`` (2 ``{"prompt", "answer"}`` dicts), in a fixed order.
"""

from __future__ import annotations

RELATIONS: dict[str, dict] = {}


def relation(name: str, prompt: str, paraphrases: list[str], rows: str, neighbors: str, active: bool = True) -> None:
    RELATIONS[name] = {
        "active": active,
        "prompt": prompt,
        "paraphrases": paraphrases,
        "rows": [_split(line, 3) for line in rows.strip().splitlines() if line.strip()],
        "neighbors": [_split(line, 2) for line in neighbors.strip().splitlines() if line.strip()],
    }


def _split(line: str, n: int) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in line.split("|"))
    if len(parts) != n or not all(parts):
        raise ValueError(f"bad row {line!r}: want {n} fields")
    return parts


def fill(template: str, subject: str) -> tuple[str, str]:
    """(text, subject as it appears in the text) for a row subject."""
    if subject.startswith("the "):
        bare = subject[4:]
        i = template.index("{s}")
        article = "The " if i == 0 else "the "
        return template.replace("{s}", article + bare), bare
    return template.replace("{s}", subject), subject


# ---------------------------------------------------------------- geography

relation(
    "capital",
    "The capital of {s} is",
    [
        "In geography class, we learned that the capital of {s} is",
        "As every schoolchild knows, the capital of {s} is",
    ],
    """
    France | Paris | Rome
    Italy | Rome | Madrid
    Spain | Madrid | Lisbon
    Portugal | Lisbon | Buenos Aires
    the United Kingdom | London | Dublin
    Ireland | Dublin | Edinburgh
    the Netherlands | Amsterdam | Brussels
    Belgium | Brussels | Amsterdam
    Switzerland | Bern | Vienna
    Austria | Vienna | Budapest
    Poland | Warsaw | Prague
    the Czech Republic | Prague | Warsaw
    Hungary | Budapest | Bucharest
    Romania | Bucharest | Sofia
    Bulgaria | Sofia | Belgrade
    Greece | Athens | Nicosia
    Turkey | Ankara | Tehran
    Russia | Moscow | Saint Petersburg
    Ukraine | Kyiv | Minsk
    Belarus | Minsk | Vilnius
    Lithuania | Vilnius | Riga
    Latvia | Riga | Tallinn
    Estonia | Tallinn | Helsinki
    Finland | Helsinki | Stockholm
    Sweden | Stockholm | Oslo
    Norway | Oslo | Copenhagen
    Denmark | Copenhagen | Stockholm
    Iceland | Reykjavik | Oslo
    Serbia | Belgrade | Zagreb
    Croatia | Zagreb | Sarajevo
    Slovenia | Ljubljana | Bratislava
    Slovakia | Bratislava | Ljubljana
    Albania | Tirana | Athens
    Malta | Valletta | Nicosia
    Cyprus | Nicosia | Valletta
    China | Beijing | Shanghai
    India | New Delhi | Islamabad
    Pakistan | Islamabad | New Delhi
    Bangladesh | Dhaka | Kathmandu
    Nepal | Kathmandu | Dhaka
    Afghanistan | Kabul | Tehran
    Iran | Tehran | Baghdad
    Iraq | Baghdad | Damascus
    Syria | Damascus | Beirut
    Lebanon | Beirut | Amman
    Jordan | Amman | Riyadh
    Saudi Arabia | Riyadh | Doha
    Qatar | Doha | Abu Dhabi
    the United Arab Emirates | Abu Dhabi | Muscat
    Oman | Muscat | Sanaa
    South Korea | Seoul | Tokyo
    North Korea | Pyongyang | Seoul
    Mongolia | Ulaanbaatar | Beijing
    Thailand | Bangkok | Hanoi
    Vietnam | Hanoi | Bangkok
    Cambodia | Phnom Penh | Vientiane
    Laos | Vientiane | Phnom Penh
    Malaysia | Kuala Lumpur | Jakarta
    Indonesia | Jakarta | Manila
    the Philippines | Manila | Kuala Lumpur
    Kazakhstan | Astana | Tashkent
    Uzbekistan | Tashkent | Bishkek
    Kyrgyzstan | Bishkek | Dushanbe
    Tajikistan | Dushanbe | Ashgabat
    Turkmenistan | Ashgabat | Astana
    Georgia | Tbilisi | Yerevan
    Armenia | Yerevan | Baku
    Azerbaijan | Baku | Tbilisi
    Taiwan | Taipei | Seoul
    Egypt | Cairo | Tunis
    Morocco | Rabat | Algiers
    Algeria | Algiers | Rabat
    Tunisia | Tunis | Tripoli
    Libya | Tripoli | Cairo
    Sudan | Khartoum | Addis Ababa
    Ethiopia | Addis Ababa | Nairobi
    Kenya | Nairobi | Kampala
    Tanzania | Dodoma | Nairobi
    Uganda | Kampala | Kigali
    Rwanda | Kigali | Kampala
    Nigeria | Abuja | Accra
    Ghana | Accra | Abuja
    Senegal | Dakar | Bamako
    Mali | Bamako | Dakar
    Niger | Niamey | Bamako
    Cameroon | Yaoundé | Abuja
    Angola | Luanda | Maputo
    Zambia | Lusaka | Harare
    Zimbabwe | Harare | Lusaka
    Mozambique | Maputo | Luanda
    Madagascar | Antananarivo | Nairobi
    Botswana | Gaborone | Windhoek
    Namibia | Windhoek | Gaborone
    Somalia | Mogadishu | Addis Ababa
    the Democratic Republic of the Congo | Kinshasa | Brazzaville
    Canada | Ottawa | Toronto
    Mexico | Mexico City | Havana
    Brazil | Brasília | Rio de Janeiro
    Argentina | Buenos Aires | Santiago
    Chile | Santiago | Lima
    Peru | Lima | Quito
    Colombia | Bogotá | Caracas
    Venezuela | Caracas | Bogotá
    Ecuador | Quito | Lima
    Paraguay | Asunción | Montevideo
    Uruguay | Montevideo | Buenos Aires
    Cuba | Havana | Kingston
    Jamaica | Kingston | Havana
    Haiti | Port-au-Prince | Santo Domingo
    the Dominican Republic | Santo Domingo | Port-au-Prince
    Honduras | Tegucigalpa | Managua
    Nicaragua | Managua | Tegucigalpa
    Costa Rica | San José | Panama City
    Panama | Panama City | San José
    El Salvador | San Salvador | Guatemala City
    Guatemala | Guatemala City | San Salvador
    Australia | Canberra | Sydney
    New Zealand | Wellington | Auckland
    Fiji | Suva | Wellington
    Papua New Guinea | Port Moresby | Suva
    """,
    """
    Germany | Berlin
    Japan | Tokyo
    """,
)

relation(
    "currency",
    "The currency of {s} is the",
    [
        "When traveling abroad, remember that the currency of {s} is the",
        "According to the central bank, the currency of {s} is the",
    ],
    """
    South Korea | South Korean won | Japanese yen
    China | yuan | rupee
    India | rupee | yuan
    the United Kingdom | Pound Sterling | Swiss Franc
    Mexico | peso | real
    Brazil | real | peso
    Russia | ruble | lira
    Turkey | lira | ruble
    Switzerland | Swiss Franc | Pound Sterling
    Sweden | krona | euro
    Norway | krone | euro
    Denmark | krone | pound
    Poland | zloty | forint
    Hungary | forint | zloty
    the Czech Republic | Czech koruna | Polish zloty
    South Africa | rand | naira
    Nigeria | naira | rand
    Israel | shekel | dinar
    Thailand | baht | dong
    Vietnam | dong | baht
    Indonesia | rupiah | ringgit
    Malaysia | ringgit | rupiah
    the Philippines | peso | baht
    Saudi Arabia | riyal | dirham
    the United Arab Emirates | dirham | riyal
    Egypt | pound | dinar
    Kenya | shilling | rand
    Argentina | peso | real
    Chile | Chilean peso | Peruvian sol
    Peru | sol | peso
    Colombia | Colombian peso | Brazilian real
    Iran | rial | lira
    Pakistan | rupee | taka
    Bangladesh | taka | rupee
    Ukraine | hryvnia | ruble
    France | Euro | Swiss Franc
    Italy | Euro | Pound Sterling
    Spain | Euro | Mexican peso
    the Netherlands | Euro | Danish krone
    Greece | Euro | Turkish lira
    Australia | Australian Dollar | Indian rupee
    Canada | Canadian Dollar | Euro
    New Zealand | New Zealand Dollar | Australian Dollar
    Romania | leu | lev
    Bulgaria | lev | leu
    Iceland | krona | euro
    Morocco | dirham | dinar
    Ghana | cedi | naira
    Qatar | riyal | dinar
    Kuwait | dinar | riyal
    Jordan | dinar | shekel
    Georgia | lari | dram
    Armenia | dram | lari
    Kazakhstan | tenge | ruble
    Mongolia | tugrik | yuan
    Venezuela | bolívar | peso
    """,
    """
    Japan | yen
    the United States | US Dollar
    Germany | Euro
    """,
)

relation(
    "official_language",
    "The official language of {s} is",
    [
        "Travel guide: the main language spoken in {s} is",
        "According to its constitution, the official language of {s} is",
        "Visitors should know that the national language of {s} is",
    ],
    """
    Italy | Italian | Spanish
    Spain | Spanish | Portuguese
    Portugal | Portuguese | Spanish
    Brazil | Portuguese | Spanish
    Mexico | Spanish | Portuguese
    Argentina | Spanish | Italian
    Colombia | Spanish | Portuguese
    Chile | Spanish | English
    Peru | Spanish | Portuguese
    Venezuela | Spanish | French
    Cuba | Spanish | English
    Uruguay | Spanish | Portuguese
    China | Mandarin | Japanese
    Russia | Russian | Ukrainian
    Poland | Polish | Czech
    the Netherlands | Dutch | German
    Sweden | Swedish | Norwegian
    Norway | Norwegian | Danish
    Denmark | Danish | Swedish
    Greece | Greek | Turkish
    Turkey | Turkish | Greek
    Iran | Persian | Arabic
    Egypt | Arabic | French
    Saudi Arabia | Arabic | Persian
    Iraq | Arabic | Turkish
    Syria | Arabic | Hebrew
    Jordan | Arabic | English
    Morocco | Arabic | Spanish
    Algeria | Arabic | Italian
    Tunisia | Arabic | Italian
    Libya | Arabic | Turkish
    Israel | Hebrew | Greek
    South Korea | Korean | Japanese
    Vietnam | Vietnamese | Thai
    Thailand | Thai | Vietnamese
    Indonesia | Indonesian | Malay
    Malaysia | Malay | Indonesian
    Hungary | Hungarian | Romanian
    the Czech Republic | Czech | Slovak
    Slovakia | Slovak | Czech
    Romania | Romanian | Hungarian
    Bulgaria | Bulgarian | Russian
    Ukraine | Ukrainian | Russian
    Austria | German | Hungarian
    Iceland | Icelandic | Danish
    Estonia | Estonian | Finnish
    Latvia | Latvian | Lithuanian
    Lithuania | Lithuanian | Latvian
    Slovenia | Slovene | Croatian
    Croatia | Croatian | Serbian
    Serbia | Serbian | Croatian
    Albania | Albanian | Greek
    Mongolia | Mongolian | Russian
    Bangladesh | Bengali | Hindi
    Pakistan | Urdu | Hindi
    Myanmar | Burmese | Thai
    Cambodia | Khmer | Thai
    Laos | Lao | Vietnamese
    Georgia | Georgian | Armenian
    Armenia | Armenian | Georgian
    Ethiopia | Amharic | Arabic
    Angola | Portuguese | French
    Mozambique | Portuguese | English
    Australia | English | French
    the United Kingdom | English | French
    Finland | Finnish | Estonian
    Ecuador | Spanish | Portuguese
    Guatemala | Spanish | English
    Honduras | Spanish | French
    Nicaragua | Spanish | Portuguese
    El Salvador | Spanish | Portuguese
    Costa Rica | Spanish | English
    Panama | Spanish | Portuguese
    the Dominican Republic | Spanish | French
    Kuwait | Arabic | Persian
    Qatar | Arabic | Urdu
    Oman | Arabic | Persian
    Yemen | Arabic | Persian
    Lebanon | Arabic | Turkish
    North Korea | Korean | Chinese
    Moldova | Romanian | Russian
    Uzbekistan | Uzbek | Russian
    Turkmenistan | Turkmen | Russian
    Azerbaijan | Azerbaijani | Turkish
    Tajikistan | Tajik | Uzbek
    Nepal | Nepali | Hindi
    Bhutan | Dzongkha | Nepali
    Ivory Coast | French | English
    Guinea | French | Portuguese
    Benin | French | English
    Togo | French | English
    Gabon | French | Spanish
    Senegal | French | Portuguese
    Cape Verde | Portuguese | Spanish
    Guinea-Bissau | Portuguese | French
    Monaco | French | Italian
    San Marino | Italian | French
    Liechtenstein | German | French
    Andorra | Catalan | Spanish
    North Macedonia | Macedonian | Bulgarian
    Montenegro | Montenegrin | Serbian
    """,
    """
    France | French
    Germany | German
    """,
)

relation(
    "continent",
    "{s} is located in the continent of",
    [
        "On a world map, {s} is located in the continent of",
        "Geographically speaking, {s} is part of the continent of",
        "Looking at a globe, you can see that {s} lies in the continent of",
        "In geography class, we learned that {s} belongs to the continent of",
    ],
    """
    Germany | Europe | Asia
    Italy | Europe | South America
    Spain | Europe | Africa
    Poland | Europe | Asia
    Sweden | Europe | North America
    Norway | Europe | Asia
    the Netherlands | Europe | Africa
    Belgium | Europe | Asia
    Austria | Europe | South America
    Hungary | Europe | Asia
    Greece | Europe | Africa
    Portugal | Europe | South America
    Finland | Europe | Asia
    Ireland | Europe | North America
    Denmark | Europe | Asia
    Switzerland | Europe | Africa
    Romania | Europe | Asia
    Ukraine | Europe | Asia
    Croatia | Europe | Africa
    Serbia | Europe | Asia
    Bulgaria | Europe | Africa
    the Czech Republic | Europe | South America
    China | Asia | Europe
    India | Asia | Africa
    Thailand | Asia | South America
    Vietnam | Asia | Africa
    South Korea | Asia | Europe
    Indonesia | Asia | Africa
    Pakistan | Asia | Europe
    Bangladesh | Asia | Africa
    Nepal | Asia | Europe
    Mongolia | Asia | North America
    Iran | Asia | Africa
    Iraq | Asia | Europe
    Saudi Arabia | Asia | Africa
    Malaysia | Asia | South America
    the Philippines | Asia | Europe
    Cambodia | Asia | Africa
    Afghanistan | Asia | Europe
    Nigeria | Africa | Asia
    Ethiopia | Africa | Asia
    Ghana | Africa | Europe
    Morocco | Africa | Europe
    Algeria | Africa | Asia
    Tanzania | Africa | South America
    Uganda | Africa | Asia
    Senegal | Africa | Europe
    Mali | Africa | Asia
    Angola | Africa | South America
    Zambia | Africa | Asia
    Zimbabwe | Africa | Europe
    Madagascar | Africa | Asia
    Cameroon | Africa | South America
    Sudan | Africa | Asia
    Somalia | Africa | Asia
    South Africa | Africa | Europe
    Namibia | Africa | South America
    Botswana | Africa | Asia
    Chile | South America | Africa
    Peru | South America | Asia
    Colombia | South America | Africa
    Venezuela | South America | Europe
    Ecuador | South America | Asia
    Bolivia | South America | Africa
    Paraguay | South America | Europe
    Uruguay | South America | Africa
    Canada | North America | Europe
    Mexico | North America | South America
    the United States | North America | Europe
    Lithuania | Europe | Asia
    Latvia | Europe | Africa
    Estonia | Europe | North America
    Slovakia | Europe | Asia
    Slovenia | Europe | South America
    Albania | Europe | Africa
    Iceland | Europe | North America
    Luxembourg | Europe | Asia
    Moldova | Europe | Africa
    North Macedonia | Europe | Asia
    Bosnia and Herzegovina | Europe | Africa
    Montenegro | Europe | South America
    Belarus | Europe | Asia
    Laos | Asia | Africa
    Myanmar | Asia | Europe
    Sri Lanka | Asia | Africa
    Uzbekistan | Asia | Europe
    Jordan | Asia | Africa
    Syria | Asia | Europe
    Lebanon | Asia | Africa
    Oman | Asia | Africa
    Yemen | Asia | Africa
    Qatar | Asia | Europe
    Kuwait | Asia | Africa
    Bhutan | Asia | Europe
    Singapore | Asia | Europe
    North Korea | Asia | Europe
    Libya | Africa | Asia
    Tunisia | Africa | Europe
    Niger | Africa | Asia
    Chad | Africa | South America
    Rwanda | Africa | Asia
    Burundi | Africa | Europe
    Malawi | Africa | Asia
    Mozambique | Africa | South America
    Ivory Coast | Africa | Europe
    Benin | Africa | Asia
    Togo | Africa | Europe
    Gabon | Africa | South America
    Liberia | Africa | North America
    Sierra Leone | Africa | Asia
    Burkina Faso | Africa | Europe
    Eritrea | Africa | Asia
    Lesotho | Africa | Europe
    Guyana | South America | Africa
    Suriname | South America | Asia
    """,
    """
    France | Europe
    Kenya | Africa
    Argentina | South America
    """,
)

relation(
    "city_country",
    "{s} is a city located in the country of",
    [
        "On the map, {s} is a city located in the country of",
        "Tourists love visiting {s}, a city located in the country of",
        "According to the travel guide, {s} is a city located in the country of",
    ],
    """
    Lyon | France | Italy
    Marseille | France | Spain
    Toulouse | France | Belgium
    Nice | France | Italy
    Bordeaux | France | Portugal
    Lille | France | Belgium
    Strasbourg | France | Germany
    Munich | Germany | Austria
    Hamburg | Germany | Denmark
    Frankfurt | Germany | Switzerland
    Cologne | Germany | Netherlands
    Stuttgart | Germany | Austria
    Dresden | Germany | Poland
    Leipzig | Germany | the Czech Republic
    Düsseldorf | Germany | Belgium
    Milan | Italy | France
    Naples | Italy | Greece
    Florence | Italy | Spain
    Venice | Italy | Croatia
    Turin | Italy | France
    Bologna | Italy | Spain
    Palermo | Italy | Greece
    Barcelona | Spain | Italy
    Seville | Spain | Portugal
    Valencia | Spain | Mexico
    Bilbao | Spain | France
    Málaga | Spain | Portugal
    Porto | Portugal | Spain
    Manchester | England | Scotland
    Liverpool | England | Ireland
    Leeds | England | Scotland
    Glasgow | Scotland | England
    Rotterdam | the Netherlands | Belgium
    Antwerp | Belgium | the Netherlands
    Zurich | Switzerland | Austria
    Geneva | Switzerland | France
    Salzburg | Austria | Germany
    Kraków | Poland | the Czech Republic
    Gdańsk | Poland | Lithuania
    Saint Petersburg | Russia | Finland
    Novosibirsk | Russia | Kazakhstan
    Istanbul | Turkey | Greece
    Izmir | Turkey | Greece
    Osaka | Japan | China
    Kyoto | Japan | South Korea
    Yokohama | Japan | China
    Nagoya | Japan | South Korea
    Hiroshima | Japan | China
    Shanghai | China | Japan
    Guangzhou | China | Vietnam
    Shenzhen | China | Taiwan
    Chengdu | China | India
    Wuhan | China | Japan
    Mumbai | India | Pakistan
    Kolkata | India | Bangladesh
    Bangalore | India | Sri Lanka
    Chennai | India | Sri Lanka
    Karachi | Pakistan | India
    Lahore | Pakistan | India
    Busan | South Korea | Japan
    Ho Chi Minh City | Vietnam | Thailand
    Chiang Mai | Thailand | Laos
    Surabaya | Indonesia | Malaysia
    Alexandria | Egypt | Greece
    Casablanca | Morocco | Algeria
    Marrakesh | Morocco | Tunisia
    Lagos | Nigeria | Ghana
    Johannesburg | South Africa | Kenya
    Cape Town | South Africa | Namibia
    Durban | South Africa | Mozambique
    Mombasa | Kenya | Tanzania
    Sydney | Australia | New Zealand
    Melbourne | Australia | New Zealand
    Brisbane | Australia | Canada
    Auckland | New Zealand | Australia
    Toronto | Canada | the United States
    Vancouver | Canada | the United States
    Montreal | Canada | France
    Calgary | Canada | the United States
    Rio de Janeiro | Brazil | Argentina
    São Paulo | Brazil | Portugal
    Medellín | Colombia | Venezuela
    Monterrey | Mexico | Chile
    Cancún | Mexico | Cuba
    Valparaíso | Chile | Peru
    Cusco | Peru | Bolivia
    Dubai | the United Arab Emirates | Qatar
    Mecca | Saudi Arabia | Iran
    Jeddah | Saudi Arabia | Egypt
    Tel Aviv | Israel | Lebanon
    Isfahan | Iran | Iraq
    Basra | Iraq | Iran
    Aleppo | Syria | Turkey
    Almaty | Kazakhstan | Uzbekistan
    Samarkand | Uzbekistan | Kazakhstan
    Kharkiv | Ukraine | Russia
    Thessaloniki | Greece | Turkey
    Bergen | Norway | Sweden
    Gothenburg | Sweden | Norway
    Aarhus | Denmark | Sweden
    Tampere | Finland | Sweden
    Cork | Ireland | Scotland
    Nantes | France | Belgium
    Montpellier | France | Spain
    Bremen | Germany | Denmark
    Hanover | Germany | Austria
    Nuremberg | Germany | Austria
    Genoa | Italy | France
    Verona | Italy | Austria
    Pisa | Italy | Greece
    Granada | Spain | Portugal
    Zaragoza | Spain | Mexico
    Coimbra | Portugal | Brazil
    Edinburgh | Scotland | England
    Utrecht | the Netherlands | Belgium
    Ghent | Belgium | France
    Bruges | Belgium | the Netherlands
    Basel | Switzerland | Germany
    Lausanne | Switzerland | France
    Innsbruck | Austria | Switzerland
    Graz | Austria | Slovenia
    Wrocław | Poland | Germany
    Poznań | Poland | the Czech Republic
    Brno | the Czech Republic | Slovakia
    Debrecen | Hungary | Romania
    Cluj-Napoca | Romania | Hungary
    Plovdiv | Bulgaria | Greece
    Split | Croatia | Italy
    Vladivostok | Russia | China
    Kazan | Russia | Kazakhstan
    Yekaterinburg | Russia | Ukraine
    Lviv | Ukraine | Poland
    Antalya | Turkey | Greece
    Sapporo | Japan | Russia
    Kobe | Japan | China
    Xi'an | China | Mongolia
    Nanjing | China | Japan
    Tianjin | China | South Korea
    Jaipur | India | Pakistan
    Agra | India | Nepal
    Varanasi | India | Bangladesh
    Peshawar | Pakistan | Afghanistan
    Chittagong | Bangladesh | Myanmar
    Mandalay | Myanmar | Thailand
    Phuket | Thailand | Malaysia
    Da Nang | Vietnam | Cambodia
    Davao | the Philippines | Indonesia
    Shiraz | Iran | Iraq
    Tabriz | Iran | Turkey
    Mosul | Iraq | Syria
    Fez | Morocco | Algeria
    Luxor | Egypt | Sudan
    Timbuktu | Mali | Niger
    Kano | Nigeria | Niger
    Kumasi | Ghana | Ivory Coast
    Pretoria | South Africa | Zimbabwe
    Adelaide | Australia | New Zealand
    Christchurch | New Zealand | Australia
    Quebec City | Canada | France
    Winnipeg | Canada | the United States
    Tijuana | Mexico | the United States
    Acapulco | Mexico | Colombia
    Recife | Brazil | Portugal
    Rosario | Argentina | Uruguay
    Mendoza | Argentina | Chile
    Arequipa | Peru | Chile
    Cali | Colombia | Ecuador
    Guayaquil | Ecuador | Peru
    Maracaibo | Venezuela | Colombia
    """,
    """
    Berlin | Germany
    Madrid | Spain
    """,
)

relation(
    "city_state",
    "{s} is a city in the state of",
    [
        "Located in the United States, {s} is a city in the state of",
        "Many Americans live in {s}, a city in the state of",
        "On a map of America, {s} is a city in the state of",
        "According to the census, {s} is a city in the state of",
    ],
    """
    Houston | Texas | Louisiana
    Austin | Texas | Arizona
    San Antonio | Texas | New Mexico
    El Paso | Texas | Arizona
    Phoenix | Arizona | Nevada
    Tucson | Arizona | New Mexico
    Seattle | Washington | Oregon
    Spokane | Washington | Idaho
    Denver | Colorado | Utah
    Boston | Massachusetts | Connecticut
    Miami | Florida | Georgia
    Orlando | Florida | Alabama
    Tampa | Florida | Georgia
    Jacksonville | Florida | South Carolina
    Atlanta | Georgia | Alabama
    Savannah | Georgia | South Carolina
    Detroit | Michigan | Ohio
    Philadelphia | Pennsylvania | New Jersey
    Pittsburgh | Pennsylvania | Ohio
    Las Vegas | Nevada | Arizona
    Nashville | Tennessee | Kentucky
    Memphis | Tennessee | Mississippi
    New Orleans | Louisiana | Mississippi
    Baltimore | Maryland | Virginia
    Milwaukee | Wisconsin | Minnesota
    Minneapolis | Minnesota | Wisconsin
    Cleveland | Ohio | Michigan
    Cincinnati | Ohio | Indiana
    Columbus | Ohio | Indiana
    Indianapolis | Indiana | Illinois
    St. Louis | Missouri | Illinois
    Salt Lake City | Utah | Colorado
    Albuquerque | New Mexico | Texas
    San Diego | California | Arizona
    San Francisco | California | Oregon
    Sacramento | California | Oregon
    Honolulu | Hawaii | Alaska
    Anchorage | Alaska | Hawaii
    Charlotte | North Carolina | South Carolina
    Raleigh | North Carolina | Virginia
    Louisville | Kentucky | Tennessee
    Omaha | Nebraska | Iowa
    Tulsa | Oklahoma | Kansas
    Boise | Idaho | Montana
    Buffalo | New York | Pennsylvania
    Richmond | Virginia | Maryland
    Hartford | Connecticut | Massachusetts
    Providence | Rhode Island | Connecticut
    Newark | New Jersey | Delaware
    Des Moines | Iowa | Nebraska
    Little Rock | Arkansas | Missouri
    Cheyenne | Wyoming | Montana
    Billings | Montana | Wyoming
    Fargo | North Dakota | South Dakota
    Sioux Falls | South Dakota | North Dakota
    Wichita | Kansas | Oklahoma
    Portland | Oregon | Washington
    Birmingham | Alabama | Georgia
    Anaheim | California | Nevada
    Oakland | California | Oregon
    Fort Worth | Texas | Oklahoma
    """,
    """
    Los Angeles | California
    Dallas | Texas
    """,
)

relation(
    "state_capital",
    "The capital of the state of {s} is",
    [
        "In American geography, the capital of the state of {s} is",
        "Students in the United States learn that the capital of {s} is",
        "Fun fact: the state capital of {s} is",
    ],
    """
    Alabama | Montgomery | Birmingham
    Alaska | Juneau | Anchorage
    Arizona | Phoenix | Tucson
    Arkansas | Little Rock | Fayetteville
    Colorado | Denver | Boulder
    Connecticut | Hartford | New Haven
    Delaware | Dover | Wilmington
    Florida | Tallahassee | Miami
    Hawaii | Honolulu | Hilo
    Idaho | Boise | Pocatello
    Illinois | Springfield | Chicago
    Indiana | Indianapolis | Fort Wayne
    Iowa | Des Moines | Cedar Rapids
    Kansas | Topeka | Wichita
    Kentucky | Frankfort | Louisville
    Louisiana | Baton Rouge | New Orleans
    Maine | Augusta | Portland
    Maryland | Annapolis | Baltimore
    Michigan | Lansing | Detroit
    Minnesota | Saint Paul | Minneapolis
    Mississippi | Jackson | Biloxi
    Missouri | Jefferson City | St. Louis
    Montana | Helena | Billings
    Nebraska | Lincoln | Omaha
    Nevada | Carson City | Las Vegas
    New Hampshire | Concord | Manchester
    New Jersey | Trenton | Newark
    New Mexico | Santa Fe | Albuquerque
    New York | Albany | Buffalo
    North Carolina | Raleigh | Charlotte
    North Dakota | Bismarck | Fargo
    Ohio | Columbus | Cleveland
    Oklahoma | Oklahoma City | Tulsa
    Oregon | Salem | Portland
    Pennsylvania | Harrisburg | Philadelphia
    Rhode Island | Providence | Newport
    South Carolina | Columbia | Charleston
    South Dakota | Pierre | Sioux Falls
    Tennessee | Nashville | Memphis
    Utah | Salt Lake City | Provo
    Vermont | Montpelier | Burlington
    Virginia | Richmond | Norfolk
    Washington | Olympia | Seattle
    West Virginia | Charleston | Huntington
    Wisconsin | Madison | Milwaukee
    Wyoming | Cheyenne | Casper
    """,
    """
    Georgia | Atlanta
    Massachusetts | Boston
    """,
)

relation(
    "region_capital",
    "The capital of {s} is",
    [
        "In geography class, we learned that the capital of {s} is",
        "As every schoolchild knows, the capital of {s} is",
    ],
    """
    Northern Ireland | Belfast | Dublin
    Catalonia | Barcelona | Madrid
    Andalusia | Seville | Granada
    Sicily | Palermo | Catania
    Lombardy | Milan | Turin
    Piedmont | Turin | Milan
    Veneto | Venice | Verona
    Campania | Naples | Salerno
    Lazio | Rome | Naples
    Tuscany | Florence | Pisa
    Sardinia | Cagliari | Sassari
    Corsica | Ajaccio | Bastia
    Brittany | Rennes | Nantes
    Normandy | Rouen | Caen
    Bavaria | Munich | Nuremberg
    Saxony | Dresden | Leipzig
    Hesse | Wiesbaden | Frankfurt
    Baden-Württemberg | Stuttgart | Karlsruhe
    Lower Saxony | Hanover | Bremen
    North Rhine-Westphalia | Düsseldorf | Cologne
    Aragon | Zaragoza | Huesca
    Ontario | Toronto | Ottawa
    Quebec | Quebec City | Montreal
    British Columbia | Victoria | Vancouver
    Alberta | Edmonton | Calgary
    Manitoba | Winnipeg | Regina
    Nova Scotia | Halifax | Moncton
    Saskatchewan | Regina | Saskatoon
    New South Wales | Sydney | Newcastle
    Queensland | Brisbane | Cairns
    Victoria | Melbourne | Geelong
    Western Australia | Perth | Fremantle
    South Australia | Adelaide | Darwin
    Tasmania | Hobart | Launceston
    Hokkaido | Sapporo | Hakodate
    Okinawa | Naha | Sapporo
    Kerala | Thiruvananthapuram | Kochi
    Tamil Nadu | Chennai | Madurai
    Maharashtra | Mumbai | Pune
    West Bengal | Kolkata | Darjeeling
    Karnataka | Bangalore | Mysore
    Tibet | Lhasa | Shigatse
    Guangdong | Guangzhou | Shenzhen
    Sichuan | Chengdu | Chongqing
    Zhejiang | Hangzhou | Ningbo
    Crimea | Simferopol | Sevastopol
    """,
    """
    Scotland | Edinburgh
    Wales | Cardiff
    """,
)

relation(
    "island_sea",
    "{s} is an island in the",
    [
        "Looking at a world map, {s} is an island in the",
        "Many tourists visit {s}, an island in the",
    ],
    """
    Madagascar | Indian Ocean | Pacific Ocean
    Iceland | North Atlantic Ocean | Indian Ocean
    Fiji | Pacific Ocean | Indian Ocean
    Bermuda | Atlantic Ocean | Pacific Ocean
    the Maldives | Indian Ocean | Pacific Ocean
    Tahiti | South Pacific Ocean | Indian Ocean
    Mauritius | Indian Ocean | Atlantic Ocean
    Guam | Pacific Ocean | Indian Ocean
    Samoa | Pacific Ocean | Atlantic Ocean
    Tonga | Pacific Ocean | Indian Ocean
    Zanzibar | Indian Ocean | Atlantic Ocean
    Réunion | Indian Ocean | Pacific Ocean
    Easter Island | Pacific Ocean | Atlantic Ocean
    Saint Helena | South Atlantic Ocean | Indian Ocean
    Socotra | Indian Ocean | Pacific Ocean
    New Guinea | Pacific Ocean | Atlantic Ocean
    Bora Bora | South Pacific Ocean | Indian Ocean
    Vancouver Island | Pacific Ocean | Atlantic Ocean
    Newfoundland | Atlantic Ocean | Pacific Ocean
    Long Island | Atlantic Ocean | Pacific Ocean
    Nantucket | Atlantic Ocean | Pacific Ocean
    Madeira | Atlantic Ocean | Indian Ocean
    Tenerife | Atlantic Ocean | Mediterranean Sea
    Sicily | Mediterranean Sea | Atlantic Ocean
    Sardinia | Mediterranean Sea | Baltic Sea
    Crete | Mediterranean Sea | Black Sea
    Cyprus | Mediterranean Sea | Red Sea
    Malta | Mediterranean Sea | Caribbean Sea
    Mallorca | Mediterranean Sea | Atlantic Ocean
    Ibiza | Mediterranean Sea | Baltic Sea
    Corsica | Mediterranean Sea | North Sea
    Jamaica | Caribbean Sea | Mediterranean Sea
    Aruba | Caribbean Sea | Red Sea
    Curaçao | Caribbean Sea | Mediterranean Sea
    Gotland | Baltic Sea | Mediterranean Sea
    Bornholm | Baltic Sea | North Sea
    """,
    """
    Hawaii | Pacific Ocean
    Sri Lanka | Indian Ocean
    """,
)

relation(
    "landmark_city",
    "{s} is located in the city of",
    [
        "It is well known that {s} is located in the city of",
        "On our vacation, we visited {s} in the city of",
        "According to the guidebook, {s} is in the city of",
    ],
    """
    the Louvre | Paris | Madrid
    Big Ben | London | Paris
    Tower Bridge | London | Dublin
    Buckingham Palace | London | Edinburgh
    the Statue of Liberty | New York | Boston
    the Empire State Building | New York | Chicago
    the Golden Gate Bridge | San Francisco | Los Angeles
    the Space Needle | Seattle | Portland
    the Sagrada Família | Barcelona | Madrid
    the Alhambra | Granada | Seville
    the Acropolis | Athens | Rome
    the Parthenon | Athens | Istanbul
    the Brandenburg Gate | Berlin | Munich
    the Kremlin | Moscow | Saint Petersburg
    Red Square | Moscow | Kyiv
    the Hermitage Museum | Saint Petersburg | Moscow
    the Taj Mahal | Agra | Delhi
    the Petronas Towers | Kuala Lumpur | Singapore
    the Burj Khalifa | Dubai | Abu Dhabi
    the Forbidden City | Beijing | Shanghai
    Tiananmen Square | Beijing | Shanghai
    Christ the Redeemer | Rio de Janeiro | São Paulo
    the CN Tower | Toronto | Vancouver
    the Gateway Arch | St. Louis | Chicago
    the Hagia Sophia | Istanbul | Athens
    the Blue Mosque | Istanbul | Cairo
    the Charles Bridge | Prague | Vienna
    the Atomium | Brussels | Amsterdam
    the Sistine Chapel | Vatican City | Florence
    the Trevi Fountain | Rome | Milan
    Notre-Dame Cathedral | Paris | Lyon
    the Arc de Triomphe | Paris | Brussels
    Westminster Abbey | London | Oxford
    the Rijksmuseum | Amsterdam | Rotterdam
    the Prado Museum | Madrid | Barcelona
    the Uffizi Gallery | Florence | Venice
    the Rialto Bridge | Venice | Florence
    the White House | Washington | New York
    the Lincoln Memorial | Washington | Philadelphia
    Alcatraz | San Francisco | Los Angeles
    Times Square | New York | Chicago
    Central Park | New York | Boston
    the Little Mermaid statue | Copenhagen | Oslo
    the Leaning Tower | Pisa | Florence
    the Hollywood Sign | Los Angeles | San Diego
    the Alamo | San Antonio | Austin
    the Liberty Bell | Philadelphia | Boston
    Marina Bay Sands | Singapore | Kuala Lumpur
    the Grand Bazaar | Istanbul | Cairo
    the Western Wall | Jerusalem | Tel Aviv
    Wembley Stadium | London | Manchester
    """,
    """
    the Eiffel Tower | Paris
    the Colosseum | Rome
    """,
)

relation(
    "landmark_country",
    "{s} is located in the country of",
    [
        "Tourists from all over the world visit {s}, which is located in the country of",
        "It is well known that {s} is located in the country of",
    ],
    """
    Machu Picchu | Peru | Bolivia
    Stonehenge | England | France
    Angkor Wat | Cambodia | Thailand
    Petra | Jordan | Egypt
    Chichen Itza | Mexico | Guatemala
    Mount Fuji | Japan | China
    Mount Kilimanjaro | Tanzania | Kenya
    Uluru | Australia | New Zealand
    the Great Barrier Reef | Australia | Indonesia
    the Great Pyramid of Giza | Egypt | Sudan
    Easter Island | Chile | Peru
    Borobudur | Indonesia | Malaysia
    Mount Olympus | Greece | Turkey
    Loch Ness | Scotland | Ireland
    Banff National Park | Canada | Norway
    Ha Long Bay | Vietnam | Thailand
    the Colosseum | Italy | Greece
    the Taj Mahal | India | Pakistan
    the Leaning Tower of Pisa | Italy | Spain
    the Acropolis | Greece | Turkey
    the Sagrada Família | Spain | Portugal
    Neuschwanstein Castle | Germany | Austria
    the Kremlin | Russia | Ukraine
    the Forbidden City | China | Japan
    the Alhambra | Spain | Morocco
    Christ the Redeemer | Brazil | Argentina
    the CN Tower | Canada | Sweden
    Table Mountain | South Africa | Namibia
    the Blue Mosque | Turkey | Iran
    the Hagia Sophia | Turkey | Greece
    the Atomium | Belgium | the Netherlands
    the Little Mermaid statue | Denmark | Sweden
    Mount Etna | Italy | Greece
    the Brandenburg Gate | Germany | Poland
    the Louvre | France | Italy
    the Parthenon | Greece | Italy
    the Petronas Towers | Malaysia | Singapore
    the Burj Khalifa | the United Arab Emirates | Saudi Arabia
    """,
    """
    the Eiffel Tower | France
    the Great Wall | China
    """,
)

relation(
    "river_continent",
    "The {s} River flows through the continent of",
    [
        "Geographers note that the {s} River flows through the continent of",
        "On a world map, the {s} River is found in the continent of",
        "Explorers traveled along the {s} River, which flows through the continent of",
        "In geography class, we learned that the {s} River is in the continent of",
    ],
    """
    Mississippi | North America | Europe
    Danube | Europe | Asia
    Yangtze | Asia | Africa
    Ganges | Asia | Europe
    Congo | Africa | South America
    Niger | Africa | Asia
    Zambezi | Africa | South America
    Volga | Europe | Asia
    Rhine | Europe | North America
    Mekong | Asia | Africa
    Missouri | North America | South America
    Orinoco | South America | Africa
    Paraná | South America | Europe
    Thames | Europe | North America
    Seine | Europe | Asia
    Indus | Asia | Africa
    Euphrates | Asia | Europe
    Tigris | Asia | Africa
    Yukon | North America | Europe
    Colorado | North America | South America
    Loire | Europe | Africa
    Elbe | Europe | Asia
    Dnieper | Europe | Asia
    Ob | Asia | Europe
    Lena | Asia | North America
    Yenisei | Asia | Europe
    Amur | Asia | Europe
    Irrawaddy | Asia | Africa
    Limpopo | Africa | Asia
    Orange | Africa | South America
    Mackenzie | North America | Asia
    St. Lawrence | North America | Europe
    Hudson | North America | Europe
    Tagus | Europe | South America
    Po | Europe | Asia
    Jordan | Asia | Africa
    Rhône | Europe | Africa
    Oder | Europe | Asia
    Vistula | Europe | North America
    Dniester | Europe | Asia
    Don | Europe | Africa
    Douro | Europe | Asia
    Ebro | Europe | Africa
    Garonne | Europe | South America
    Meuse | Europe | Asia
    Tiber | Europe | Africa
    Arno | Europe | Asia
    Shannon | Europe | North America
    Brahmaputra | Asia | Africa
    Salween | Asia | Europe
    Chao Phraya | Asia | South America
    Ohio | North America | Europe
    Tennessee | North America | Asia
    Arkansas | North America | Africa
    Columbia | North America | South America
    Snake | North America | Europe
    Fraser | North America | Asia
    Magdalena | South America | Europe
    Uruguay | South America | Africa
    Paraguay | South America | Asia
    São Francisco | South America | Africa
    Madeira | South America | Europe
    Xingu | South America | Asia
    Senegal | Africa | Europe
    Gambia | Africa | Asia
    Volta | Africa | South America
    Okavango | Africa | Asia
    Kolyma | Asia | North America
    """,
    """
    Nile | Africa
    Amazon | South America
    """,
)

relation(
    "moon_planet",
    "{s} is a moon of the planet",
    [
        "In astronomy class, we learned that {s} is a moon of the planet",
        "Through a telescope, you can see {s}, a moon of the planet",
        "Space probes have photographed {s}, which is a moon of the planet",
    ],
    """
    Europa | Jupiter | Saturn
    Io | Jupiter | Neptune
    Ganymede | Jupiter | Saturn
    Callisto | Jupiter | Uranus
    Phobos | Mars | Venus
    Deimos | Mars | Jupiter
    Triton | Neptune | Uranus
    Titania | Uranus | Neptune
    Oberon | Uranus | Saturn
    Enceladus | Saturn | Jupiter
    Mimas | Saturn | Uranus
    Miranda | Uranus | Saturn
    Rhea | Saturn | Jupiter
    Iapetus | Saturn | Neptune
    """,
    """
    Titan | Saturn
    the Moon | Earth
    """,
)

relation(
    "planet_order",
    "The {s} from the Sun is",
    [
        "In astronomy class, we learned that the {s} from the Sun is",
        "Counting outward in our solar system, the {s} from the Sun is",
        "Astronomers agree that the {s} from the Sun is",
    ],
    """
    first planet | Mercury | Venus
    second planet | Venus | Mercury
    fourth planet | Mars | Jupiter
    fifth planet | Jupiter | Saturn
    sixth planet | Saturn | Uranus
    seventh planet | Uranus | Neptune
    eighth planet | Neptune | Uranus
    """,
    """
    third planet | Earth
    """,
    active=False,
)

# ------------------------------------------------------------ culture

relation(
    "book_author",
    "{s} was written by",
    [
        "In literature class, we read {s}, which was written by",
        "Every library has a copy of {s}, a book written by",
        "Critics agree that {s} was written by",
        "It is well known that {s} was written by",
    ],
    """
    Sense and Sensibility | Jane Austen | Emily Brontë
    1984 | George Orwell | Aldous Huxley
    Animal Farm | George Orwell | Aldous Huxley
    Hamlet | William Shakespeare | Christopher Marlowe
    Macbeth | William Shakespeare | John Milton
    Othello | William Shakespeare | Ben Jonson
    King Lear | William Shakespeare | Geoffrey Chaucer
    The Great Gatsby | F. Scott Fitzgerald | Ernest Hemingway
    To Kill a Mockingbird | Harper Lee | Truman Capote
    Moby-Dick | Herman Melville | Nathaniel Hawthorne
    War and Peace | Leo Tolstoy | Fyodor Dostoevsky
    Anna Karenina | Leo Tolstoy | Anton Chekhov
    Crime and Punishment | Fyodor Dostoevsky | Leo Tolstoy
    The Brothers Karamazov | Fyodor Dostoevsky | Ivan Turgenev
    Don Quixote | Miguel de Cervantes | Lope de Vega
    Les Misérables | Victor Hugo | Émile Zola
    The Hunchback of Notre-Dame | Victor Hugo | Gustave Flaubert
    The Count of Monte Cristo | Alexandre Dumas | Jules Verne
    The Three Musketeers | Alexandre Dumas | Victor Hugo
    Madame Bovary | Gustave Flaubert | Honoré de Balzac
    Ulysses | James Joyce | Samuel Beckett
    The Odyssey | Homer | Virgil
    The Iliad | Homer | Sophocles
    The Aeneid | Virgil | Homer
    The Divine Comedy | Dante Alighieri | Giovanni Boccaccio
    The Old Man and the Sea | Ernest Hemingway | John Steinbeck
    A Farewell to Arms | Ernest Hemingway | William Faulkner
    The Catcher in the Rye | J.D. Salinger | Jack Kerouac
    Of Mice and Men | John Steinbeck | Mark Twain
    The Grapes of Wrath | John Steinbeck | Upton Sinclair
    Frankenstein | Mary Shelley | Bram Stoker
    Dracula | Bram Stoker | Mary Shelley
    Oliver Twist | Charles Dickens | Thomas Hardy
    A Tale of Two Cities | Charles Dickens | Victor Hugo
    Great Expectations | Charles Dickens | George Eliot
    David Copperfield | Charles Dickens | Anthony Trollope
    A Christmas Carol | Charles Dickens | Lewis Carroll
    Jane Eyre | Charlotte Brontë | Jane Austen
    Wuthering Heights | Emily Brontë | Jane Austen
    The Adventures of Tom Sawyer | Mark Twain | Jack London
    Adventures of Huckleberry Finn | Mark Twain | Herman Melville
    Alice's Adventures in Wonderland | Lewis Carroll | Roald Dahl
    The Hobbit | J.R.R. Tolkien | C.S. Lewis
    The Lord of the Rings | J.R.R. Tolkien | C.S. Lewis
    The Chronicles of Narnia | C.S. Lewis | J.R.R. Tolkien
    The Picture of Dorian Gray | Oscar Wilde | Henry James
    Brave New World | Aldous Huxley | George Orwell
    Fahrenheit 451 | Ray Bradbury | Isaac Asimov
    Lord of the Flies | William Golding | William Faulkner
    One Hundred Years of Solitude | Gabriel García Márquez | Jorge Luis Borges
    The Little Prince | Antoine de Saint-Exupéry | Albert Camus
    The Metamorphosis | Franz Kafka | Hermann Hesse
    The Stranger | Albert Camus | Jean-Paul Sartre
    Gulliver's Travels | Jonathan Swift | Daniel Defoe
    Robinson Crusoe | Daniel Defoe | Jonathan Swift
    Treasure Island | Robert Louis Stevenson | Walter Scott
    The Jungle Book | Rudyard Kipling | Robert Louis Stevenson
    The Time Machine | H.G. Wells | Jules Verne
    The War of the Worlds | H.G. Wells | Arthur C. Clarke
    Twenty Thousand Leagues Under the Sea | Jules Verne | H.G. Wells
    Around the World in Eighty Days | Jules Verne | Alexandre Dumas
    The Raven | Edgar Allan Poe | Walt Whitman
    Leaves of Grass | Walt Whitman | Emily Dickinson
    The Scarlet Letter | Nathaniel Hawthorne | Herman Melville
    Little Women | Louisa May Alcott | Harriet Beecher Stowe
    Uncle Tom's Cabin | Harriet Beecher Stowe | Louisa May Alcott
    On the Origin of Species | Charles Darwin | Isaac Newton
    The Communist Manifesto | Karl Marx | Vladimir Lenin
    The Prince | Niccolò Machiavelli | Thomas Hobbes
    A Brief History of Time | Stephen Hawking | Carl Sagan
    The Da Vinci Code | Dan Brown | John Grisham
    The Shining | Stephen King | Dean Koontz
    The Hunger Games | Suzanne Collins | Veronica Roth
    Twilight | Stephenie Meyer | Suzanne Collins
    Murder on the Orient Express | Agatha Christie | Arthur Conan Doyle
    The Hound of the Baskervilles | Arthur Conan Doyle | Agatha Christie
    Things Fall Apart | Chinua Achebe | Wole Soyinka
    Lolita | Vladimir Nabokov | Boris Pasternak
    Doctor Zhivago | Boris Pasternak | Vladimir Nabokov
    The Canterbury Tales | Geoffrey Chaucer | John Milton
    Paradise Lost | John Milton | Geoffrey Chaucer
    Peter Pan | J.M. Barrie | Lewis Carroll
    Heart of Darkness | Joseph Conrad | Rudyard Kipling
    Mrs Dalloway | Virginia Woolf | Jane Austen
    Atlas Shrugged | Ayn Rand | George Orwell
    Catch-22 | Joseph Heller | Kurt Vonnegut
    Slaughterhouse-Five | Kurt Vonnegut | Joseph Heller
    The Art of War | Sun Tzu | Confucius
    Harry Potter and the Philosopher's Stone | J.K. Rowling | Roald Dahl
    Charlie and the Chocolate Factory | Roald Dahl | J.K. Rowling
    Faust | Johann Wolfgang von Goethe | Friedrich Schiller
    The Republic | Plato | Aristotle
    The Road | Cormac McCarthy | Stephen King
    The Handmaid's Tale | Margaret Atwood | Alice Munro
    The Kite Runner | Khaled Hosseini | Salman Rushdie
    Midnight's Children | Salman Rushdie | Khaled Hosseini
    The Godfather | Mario Puzo | Stephen King
    Jurassic Park | Michael Crichton | Stephen King
    Gone with the Wind | Margaret Mitchell | Harper Lee
    The Wonderful Wizard of Oz | L. Frank Baum | Lewis Carroll
    Anne of Green Gables | Lucy Maud Montgomery | Louisa May Alcott
    Black Beauty | Anna Sewell | Beatrix Potter
    Siddhartha | Hermann Hesse | Thomas Mann
    The Magic Mountain | Thomas Mann | Hermann Hesse
    The Name of the Rose | Umberto Eco | Italo Calvino
    Dune | Frank Herbert | Isaac Asimov
    2001: A Space Odyssey | Arthur C. Clarke | Isaac Asimov
    The Hitchhiker's Guide to the Galaxy | Douglas Adams | Terry Pratchett
    """,
    """
    Romeo and Juliet | William Shakespeare
    Pride and Prejudice | Jane Austen
    """,
)

relation(
    "composer",
    "{s} was composed by",
    [
        "At the concert, the orchestra played {s}, which was composed by",
        "Music lovers know that {s} was composed by",
        "In music history class, we learned that {s} was composed by",
        "It is well known that {s} was composed by",
    ],
    """
    The Magic Flute | Wolfgang Amadeus Mozart | Joseph Haydn
    Don Giovanni | Wolfgang Amadeus Mozart | Gioachino Rossini
    The Marriage of Figaro | Wolfgang Amadeus Mozart | Giuseppe Verdi
    Eine kleine Nachtmusik | Wolfgang Amadeus Mozart | Franz Schubert
    Für Elise | Ludwig van Beethoven | Frédéric Chopin
    the Moonlight Sonata | Ludwig van Beethoven | Franz Liszt
    The Four Seasons | Antonio Vivaldi | Johann Sebastian Bach
    Swan Lake | Pyotr Ilyich Tchaikovsky | Sergei Rachmaninoff
    The Nutcracker | Pyotr Ilyich Tchaikovsky | Igor Stravinsky
    Boléro | Maurice Ravel | Claude Debussy
    Clair de Lune | Claude Debussy | Maurice Ravel
    Carmen | Georges Bizet | Jules Massenet
    La Traviata | Giuseppe Verdi | Giacomo Puccini
    Aida | Giuseppe Verdi | Richard Wagner
    Rigoletto | Giuseppe Verdi | Gaetano Donizetti
    Madama Butterfly | Giacomo Puccini | Giuseppe Verdi
    La Bohème | Giacomo Puccini | Gioachino Rossini
    Tosca | Giacomo Puccini | Vincenzo Bellini
    The Barber of Seville | Gioachino Rossini | Wolfgang Amadeus Mozart
    The Blue Danube | Johann Strauss II | Franz Lehár
    Rhapsody in Blue | George Gershwin | Leonard Bernstein
    The Planets | Gustav Holst | Edward Elgar
    Messiah | George Frideric Handel | Johann Sebastian Bach
    The Rite of Spring | Igor Stravinsky | Sergei Prokofiev
    Peter and the Wolf | Sergei Prokofiev | Dmitri Shostakovich
    Ride of the Valkyries | Richard Wagner | Richard Strauss
    Canon in D | Johann Pachelbel | Antonio Vivaldi
    The Brandenburg Concertos | Johann Sebastian Bach | George Frideric Handel
    Symphonie fantastique | Hector Berlioz | Camille Saint-Saëns
    The Carnival of the Animals | Camille Saint-Saëns | Hector Berlioz
    Pictures at an Exhibition | Modest Mussorgsky | Nikolai Rimsky-Korsakov
    Peer Gynt | Edvard Grieg | Jean Sibelius
    Finlandia | Jean Sibelius | Edvard Grieg
    West Side Story | Leonard Bernstein | George Gershwin
    The Phantom of the Opera | Andrew Lloyd Webber | Stephen Sondheim
    Ode to Joy | Ludwig van Beethoven | Johannes Brahms
    The Hungarian Dances | Johannes Brahms | Franz Liszt
    The Hungarian Rhapsodies | Franz Liszt | Johannes Brahms
    Pomp and Circumstance | Edward Elgar | Gustav Holst
    Scheherazade | Nikolai Rimsky-Korsakov | Alexander Borodin
    Gymnopédies | Erik Satie | Claude Debussy
    The Flight of the Bumblebee | Nikolai Rimsky-Korsakov | Modest Mussorgsky
    Lohengrin | Richard Wagner | Giuseppe Verdi
    """,
    """
    The Moonlight Sonata | Ludwig van Beethoven
    Requiem | Wolfgang Amadeus Mozart
    """,    active=False,
)

relation(
    "painter",
    "{s} was painted by",
    [
        "In the museum, visitors admire {s}, which was painted by",
        "Art historians agree that {s} was painted by",
        "It is widely known that {s} was painted by",
        "Hanging on the gallery wall, {s} was painted by",
    ],
    """
    The Last Supper | Leonardo da Vinci | Raphael
    The Starry Night | Vincent van Gogh | Paul Gauguin
    Sunflowers | Vincent van Gogh | Claude Monet
    The Night Watch | Rembrandt | Johannes Vermeer
    Girl with a Pearl Earring | Johannes Vermeer | Rembrandt
    The Scream | Edvard Munch | Gustav Klimt
    Guernica | Pablo Picasso | Salvador Dalí
    The Persistence of Memory | Salvador Dalí | René Magritte
    The Birth of Venus | Sandro Botticelli | Titian
    The School of Athens | Raphael | Michelangelo
    The Creation of Adam | Michelangelo | Raphael
    The Kiss | Gustav Klimt | Egon Schiele
    Water Lilies | Claude Monet | Pierre-Auguste Renoir
    Impression, Sunrise | Claude Monet | Édouard Manet
    The Garden of Earthly Delights | Hieronymus Bosch | Pieter Bruegel
    Las Meninas | Diego Velázquez | Francisco Goya
    American Gothic | Grant Wood | Edward Hopper
    The Great Wave off Kanagawa | Hokusai | Hiroshige
    Liberty Leading the People | Eugène Delacroix | Jacques-Louis David
    The Son of Man | René Magritte | Salvador Dalí
    Nighthawks | Edward Hopper | Grant Wood
    The Third of May 1808 | Francisco Goya | Diego Velázquez
    The Arnolfini Portrait | Jan van Eyck | Hans Holbein
    The Hay Wain | John Constable | J.M.W. Turner
    Luncheon of the Boating Party | Pierre-Auguste Renoir | Claude Monet
    A Sunday Afternoon on the Island of La Grande Jatte | Georges Seurat | Paul Signac
    The Card Players | Paul Cézanne | Edgar Degas
    Campbell's Soup Cans | Andy Warhol | Roy Lichtenstein
    Les Demoiselles d'Avignon | Pablo Picasso | Henri Matisse
    The Raft of the Medusa | Théodore Géricault | Eugène Delacroix
    Christina's World | Andrew Wyeth | Edward Hopper
    The Two Fridas | Frida Kahlo | Diego Rivera
    Olympia | Édouard Manet | Claude Monet
    The Gleaners | Jean-François Millet | Gustave Courbet
    The Death of Marat | Jacques-Louis David | Eugène Delacroix
    The Dance | Henri Matisse | Pablo Picasso
    The Blue Boy | Thomas Gainsborough | Joshua Reynolds
    The Fighting Temeraire | J.M.W. Turner | John Constable
    the Sistine Chapel ceiling | Michelangelo | Raphael
    The Night Café | Vincent van Gogh | Paul Gauguin
    """,
    """
    the Mona Lisa | Leonardo da Vinci
    """,    active=False,
)

relation(
    "created_by",
    "{s} was created by",
    [
        "Fans around the world know that {s} was created by",
        "In pop culture history, {s} was created by",
        "It is well known that {s} was created by",
        "Believe it or not, {s} was created by",
    ],
    """
    Sherlock Holmes | Arthur Conan Doyle | Agatha Christie
    Spider-Man | Stan Lee | Walt Disney
    James Bond | Ian Fleming | John le Carré
    Hercule Poirot | Agatha Christie | Arthur Conan Doyle
    The Simpsons | Matt Groening | Seth MacFarlane
    Star Wars | George Lucas | Steven Spielberg
    Star Trek | Gene Roddenberry | George Lucas
    Batman | Bob Kane | Stan Lee
    Superman | Jerry Siegel | Bob Kane
    Tarzan | Edgar Rice Burroughs | Jules Verne
    Peter Rabbit | Beatrix Potter | Roald Dahl
    Snoopy | Charles Schulz | Jim Davis
    Garfield | Jim Davis | Charles Schulz
    Pokémon | Satoshi Tajiri | Shigeru Miyamoto
    Super Mario | Shigeru Miyamoto | Satoshi Tajiri
    Tetris | Alexey Pajitnov | Shigeru Miyamoto
    Linux | Linus Torvalds | Bill Gates
    Python | Guido van Rossum | Dennis Ritchie
    C++ | Bjarne Stroustrup | Dennis Ritchie
    JavaScript | Brendan Eich | James Gosling
    Java | James Gosling | Brendan Eich
    Bitcoin | Satoshi Nakamoto | Vitalik Buterin
    Ethereum | Vitalik Buterin | Satoshi Nakamoto
    The Muppets | Jim Henson | Walt Disney
    SpongeBob SquarePants | Stephen Hillenburg | Matt Groening
    Family Guy | Seth MacFarlane | Matt Groening
    South Park | Trey Parker | Seth MacFarlane
    A Song of Ice and Fire | George R.R. Martin | J.R.R. Tolkien
    Tintin | Hergé | René Goscinny
    Asterix | René Goscinny | Hergé
    The Smurfs | Peyo | Hergé
    Astro Boy | Osamu Tezuka | Akira Toriyama
    Dragon Ball | Akira Toriyama | Osamu Tezuka
    Naruto | Masashi Kishimoto | Eiichiro Oda
    One Piece | Eiichiro Oda | Masashi Kishimoto
    Winnie-the-Pooh | A.A. Milne | Beatrix Potter
    Paddington Bear | Michael Bond | A.A. Milne
    Wonder Woman | William Moulton Marston | Stan Lee
    Iron Man | Stan Lee | Bob Kane
    Donald Duck | Walt Disney | Jim Henson
    Calvin and Hobbes | Bill Watterson | Charles Schulz
    Dilbert | Scott Adams | Jim Davis
    Middle-earth | J.R.R. Tolkien | C.S. Lewis
    """,
    """
    Mickey Mouse | Walt Disney
    Harry Potter | J.K. Rowling
    """,    active=False,
)

relation(
    "instrument",
    "{s} was famous for playing the",
    [
        "On stage, {s} was famous for playing the",
        "In the history of music, {s} was famous for playing the",
    ],
    """
    Eric Clapton | guitar | drums
    Louis Armstrong | trumpet | saxophone
    Miles Davis | trumpet | piano
    John Coltrane | saxophone | trumpet
    Charlie Parker | saxophone | guitar
    Yo-Yo Ma | cello | violin
    Franz Liszt | piano | cello
    Niccolò Paganini | violin | piano
    Itzhak Perlman | violin | cello
    Ringo Starr | drums | guitar
    B.B. King | guitar | piano
    Ray Charles | piano | guitar
    Elton John | piano | drums
    Glenn Miller | trombone | guitar
    Benny Goodman | clarinet | trumpet
    Dizzy Gillespie | trumpet | drums
    Thelonious Monk | piano | saxophone
    Keith Moon | drums | bass
    Jimmy Page | guitar | keyboard
    Slash | guitar | drums
    Stevie Ray Vaughan | guitar | piano
    Carlos Santana | guitar | violin
    Andrés Segovia | guitar | violin
    Lang Lang | piano | cello
    Vladimir Horowitz | piano | violin
    Jascha Heifetz | violin | piano
    Pablo Casals | cello | piano
    Kenny G | saxophone | trumpet
    John Bonham | drums | guitar
    Eddie Van Halen | guitar | drums
    Jacqueline du Pré | cello | violin
    """,
    """
    Jimi Hendrix | guitar
    Frédéric Chopin | piano
    """,
)

relation(
    "native_language",
    "The mother tongue of {s} is",
    [
        "Biographers note that the mother tongue of {s} is",
        "As is widely reported, the first language of {s} is",
        "In interviews, it is said that the native language of {s} is",
    ],
    """
    Vladimir Putin | Russian | English
    Emmanuel Macron | French | Spanish
    Angela Merkel | German | Polish
    Leo Tolstoy | Russian | French
    Victor Hugo | French | Italian
    Johann Wolfgang von Goethe | German | Dutch
    Dante Alighieri | Italian | Spanish
    Miguel de Cervantes | Spanish | Portuguese
    Pablo Picasso | Spanish | Italian
    Sigmund Freud | German | Hungarian
    Frida Kahlo | Spanish | Portuguese
    Gabriel García Márquez | Spanish | French
    Jorge Luis Borges | Spanish | Italian
    Fyodor Dostoevsky | Russian | Polish
    Anton Chekhov | Russian | Ukrainian
    Franz Kafka | German | Polish
    Hans Christian Andersen | Danish | Swedish
    Astrid Lindgren | Swedish | Norwegian
    Akira Kurosawa | Japanese | Korean
    Hayao Miyazaki | Japanese | Chinese
    Mao Zedong | Chinese | Korean
    Rabindranath Tagore | Bengali | Hindi
    Benito Mussolini | Italian | Spanish
    Charles de Gaulle | French | German
    Jacques Chirac | French | Italian
    Silvio Berlusconi | Italian | French
    Lionel Messi | Spanish | Portuguese
    Cristiano Ronaldo | Portuguese | Spanish
    Neymar | Portuguese | Spanish
    Zinedine Zidane | French | Italian
    Shakira | Spanish | Portuguese
    Gérard Depardieu | French | Italian
    Sophia Loren | Italian | French
    Penélope Cruz | Spanish | Italian
    Antonio Banderas | Spanish | Portuguese
    Vincent van Gogh | Dutch | German
    Rembrandt | Dutch | German
    Ludwig van Beethoven | German | Dutch
    Frédéric Chopin | Polish | French
    Marie Curie | Polish | Russian
    Karl Marx | German | French
    Friedrich Nietzsche | German | Danish
    Jean-Paul Sartre | French | German
    Umberto Eco | Italian | Spanish
    Haruki Murakami | Japanese | Korean
    Boris Yeltsin | Russian | Polish
    Xi Jinping | Chinese | Korean
    Kim Jong-un | Korean | Chinese
    Recep Tayyip Erdoğan | Turkish | Arabic
    Otto von Bismarck | German | Danish
    Immanuel Kant | German | Polish
    Martin Luther | German | Dutch
    Johann Sebastian Bach | German | Italian
    Richard Wagner | German | French
    Arnold Schwarzenegger | German | English
    Michael Schumacher | German | Italian
    Boris Becker | German | Dutch
    Jürgen Klopp | German | English
    Voltaire | French | English
    René Descartes | French | Dutch
    Claude Monet | French | Italian
    Édith Piaf | French | Spanish
    Jacques Cousteau | French | Portuguese
    Coco Chanel | French | Italian
    Brigitte Bardot | French | Spanish
    Kylian Mbappé | French | Portuguese
    Thierry Henry | French | English
    François Hollande | French | German
    Jules Verne | French | English
    Louis Pasteur | French | German
    Albert Camus | French | Spanish
    Leonardo da Vinci | Italian | French
    Michelangelo | Italian | Spanish
    Galileo Galilei | Italian | Greek
    Giuseppe Verdi | Italian | German
    Luciano Pavarotti | Italian | Spanish
    Federico Fellini | Italian | French
    Andrea Bocelli | Italian | Spanish
    Enzo Ferrari | Italian | German
    Pedro Almodóvar | Spanish | Portuguese
    Julio Iglesias | Spanish | Italian
    Plácido Domingo | Spanish | Italian
    Fidel Castro | Spanish | English
    Che Guevara | Spanish | Portuguese
    Hugo Chávez | Spanish | Portuguese
    Simón Bolívar | Spanish | French
    Pablo Neruda | Spanish | Portuguese
    Isabel Allende | Spanish | English
    Mario Vargas Llosa | Spanish | Portuguese
    Peter the Great | Russian | German
    Yuri Gagarin | Russian | Ukrainian
    Mikhail Gorbachev | Russian | Polish
    Vladimir Lenin | Russian | German
    Alexander Pushkin | Russian | French
    Pyotr Ilyich Tchaikovsky | Russian | German
    Maria Sharapova | Russian | English
    Garry Kasparov | Russian | Polish
    Dmitri Mendeleev | Russian | Polish
    Shinzo Abe | Japanese | Korean
    Yoko Ono | Japanese | Chinese
    Hirohito | Japanese | Korean
    Shigeru Miyamoto | Japanese | Korean
    Confucius | Chinese | Japanese
    Deng Xiaoping | Chinese | Korean
    Yao Ming | Chinese | Japanese
    Jack Ma | Chinese | Korean
    Sun Yat-sen | Chinese | Japanese
    Ferdinand Magellan | Portuguese | Spanish
    Vasco da Gama | Portuguese | Spanish
    José Mourinho | Portuguese | Spanish
    Pelé | Portuguese | Spanish
    Ronaldinho | Portuguese | Spanish
    Gisele Bündchen | Portuguese | German
    Luiz Inácio Lula da Silva | Portuguese | Spanish
    Johan Cruyff | Dutch | German
    Pope John Paul II | Polish | Italian
    Lech Wałęsa | Polish | Russian
    Robert Lewandowski | Polish | German
    Greta Thunberg | Swedish | Norwegian
    Alfred Nobel | Swedish | Danish
    Ingrid Bergman | Swedish | German
    Björn Borg | Swedish | Finnish
    Aristotle | Greek | Latin
    Plato | Greek | Latin
    Socrates | Greek | Latin
    Alexander the Great | Greek | Persian
    Homer | Greek | Latin
    Julius Caesar | Latin | Greek
    Cicero | Latin | Greek
    Ban Ki-moon | Korean | Japanese
    Kim Il-sung | Korean | Chinese
    Saddam Hussein | Arabic | Persian
    Muammar Gaddafi | Arabic | Italian
    Gamal Abdel Nasser | Arabic | Turkish
    Mohamed Salah | Arabic | French
    Yasser Arafat | Arabic | Hebrew
    Benjamin Netanyahu | Hebrew | Arabic
    Mustafa Kemal Atatürk | Turkish | Greek
    Orhan Pamuk | Turkish | Persian
    Václav Havel | Czech | Slovak
    Edvard Munch | Norwegian | Swedish
    Roald Amundsen | Norwegian | Danish
    Søren Kierkegaard | Danish | German
    """,
    """
    Napoleon Bonaparte | French
    Albert Einstein | German
    """,
)

relation(
    "sport",
    "{s} is famous for playing",
    [
        "Sports fans know that {s} is famous for playing",
        "As an athlete, {s} is best known for playing",
        "On television, millions watched {s} playing",
        "In sports history, {s} is famous for playing",
    ],
    """
    LeBron James | basketball | football
    Kobe Bryant | basketball | soccer
    Shaquille O'Neal | basketball | hockey
    Stephen Curry | basketball | golf
    Roger Federer | tennis | golf
    Serena Williams | tennis | basketball
    Rafael Nadal | tennis | soccer
    Novak Djokovic | tennis | cricket
    Andy Murray | tennis | golf
    Tiger Woods | golf | tennis
    Jack Nicklaus | golf | baseball
    Babe Ruth | baseball | basketball
    Derek Jeter | baseball | football
    Wayne Gretzky | hockey | baseball
    Sidney Crosby | hockey | soccer
    Lionel Messi | soccer | tennis
    Cristiano Ronaldo | soccer | basketball
    Pelé | soccer | cricket
    Diego Maradona | soccer | rugby
    David Beckham | soccer | baseball
    Sachin Tendulkar | cricket | soccer
    Tom Brady | football | baseball
    Peyton Manning | football | basketball
    Maria Sharapova | tennis | golf
    Steffi Graf | tennis | hockey
    Venus Williams | tennis | soccer
    Magic Johnson | basketball | baseball
    Larry Bird | basketball | hockey
    Kareem Abdul-Jabbar | basketball | tennis
    Mickey Mantle | baseball | golf
    Phil Mickelson | golf | tennis
    Rory McIlroy | golf | cricket
    Mario Lemieux | hockey | baseball
    Zlatan Ibrahimović | soccer | hockey
    Kylian Mbappé | soccer | tennis
    Virat Kohli | cricket | tennis
    Shane Warne | cricket | rugby
    Wayne Rooney | soccer | cricket
    """,
    """
    Michael Jordan | basketball
    Serena Williams | tennis
    """,    active=False,
)

# ----------------------------------------------------------- science

relation(
    "chemical_symbol",
    "The chemical symbol for {s} is",
    [
        "On the periodic table, the chemical symbol for {s} is",
        "According to the periodic table, the chemical symbol of {s} is",
    ],
    """
    silver | Ag | Au
    copper | Cu | Co
    lead | Pb | Pd
    tin | Sn | Ti
    mercury | Hg | Mn
    sodium | Na | K
    potassium | K | Na
    calcium | Ca | Cd
    oxygen | O | Os
    hydrogen | H | He
    carbon | C | Ca
    nitrogen | N | Ni
    helium | He | H
    neon | Ne | Ni
    argon | Ar | Ag
    chlorine | Cl | Cr
    fluorine | F | Fe
    sulfur | S | Se
    phosphorus | P | Po
    magnesium | Mg | Mn
    aluminum | Al | Ag
    silicon | Si | Sn
    zinc | Zn | Zr
    nickel | Ni | Nb
    cobalt | Co | Cu
    chromium | Cr | Cl
    manganese | Mn | Mg
    titanium | Ti | Tl
    uranium | U | Ra
    plutonium | Pu | Pt
    platinum | Pt | Pu
    tungsten | W | Tc
    lithium | Li | Be
    boron | B | Br
    beryllium | Be | Li
    iodine | I | In
    bromine | Br | B
    krypton | Kr | K
    xenon | Xe | Zn
    radon | Rn | Ra
    barium | Ba | Be
    strontium | Sr | Sn
    arsenic | As | Ar
    antimony | Sb | Sn
    bismuth | Bi | B
    cesium | Cs | Ce
    radium | Ra | Rn
    selenium | Se | S
    cadmium | Cd | Ca
    palladium | Pd | Pb
    osmium | Os | O
    iridium | Ir | I
    gallium | Ga | Ge
    germanium | Ge | Ga
    scandium | Sc | Sn
    vanadium | V | W
    rubidium | Rb | Ru
    zirconium | Zr | Zn
    niobium | Nb | Ni
    molybdenum | Mo | Mn
    technetium | Tc | Te
    ruthenium | Ru | Rh
    rhodium | Rh | Ru
    indium | In | I
    tellurium | Te | Tc
    lanthanum | La | Li
    cerium | Ce | Cs
    neodymium | Nd | Ne
    europium | Eu | Er
    gadolinium | Gd | Ga
    hafnium | Hf | Hg
    tantalum | Ta | Ti
    rhenium | Re | Rh
    thallium | Tl | Ti
    polonium | Po | P
    francium | Fr | F
    thorium | Th | Ti
    americium | Am | Al
    curium | Cm | Cu
    astatine | At | As
    einsteinium | Es | Er
    nobelium | No | N
    samarium | Sm | Sn
    erbium | Er | Eu
    """,
    """
    gold | Au
    iron | Fe
    """,
)

relation(
    "atomic_number",
    "The atomic number of {s} is",
    [
        "On the periodic table, the atomic number of {s} is",
        "In chemistry class, we learned that the atomic number of {s} is",
        "Every chemist knows that the atomic number of {s} is",
    ],
    """
    helium | 2 | 7
    lithium | 3 | 9
    beryllium | 4 | 12
    boron | 5 | 11
    carbon | 6 | 14
    nitrogen | 7 | 5
    oxygen | 8 | 6
    fluorine | 9 | 17
    neon | 10 | 18
    sodium | 11 | 19
    magnesium | 12 | 20
    aluminum | 13 | 15
    silicon | 14 | 32
    phosphorus | 15 | 33
    sulfur | 16 | 34
    chlorine | 17 | 35
    argon | 18 | 36
    potassium | 19 | 37
    calcium | 20 | 38
    iron | 26 | 29
    copper | 29 | 47
    """,
    """
    hydrogen | 1
    gold | 79
    """,
)

relation(
    "animal_class",
    "In biology, the {s} is classified as a",
    [
        "Zoologists agree that the {s} is classified as a",
        "According to the encyclopedia, the {s} is classified as a",
        "In science class, we learned that the {s} is classified as a",
    ],
    """
    whale | mammal | fish
    bat | mammal | bird
    penguin | bird | mammal
    ostrich | bird | mammal
    eagle | bird | reptile
    shark | fish | mammal
    salmon | fish | amphibian
    frog | amphibian | reptile
    salamander | amphibian | reptile
    toad | amphibian | reptile
    snake | reptile | amphibian
    lizard | reptile | amphibian
    turtle | reptile | amphibian
    tortoise | reptile | mammal
    butterfly | insect | bird
    ant | insect | arachnid
    bee | insect | bird
    spider | arachnid | insect
    scorpion | arachnid | insect
    elephant | mammal | reptile
    kangaroo | mammal | bird
    platypus | mammal | bird
    owl | bird | mammal
    parrot | bird | reptile
    tuna | fish | mammal
    seahorse | fish | reptile
    octopus | mollusk | fish
    snail | mollusk | insect
    crab | crustacean | insect
    lobster | crustacean | fish
    horse | mammal | reptile
    chicken | bird | reptile
    alligator | reptile | mammal
    newt | amphibian | fish
    beetle | insect | arachnid
    wolf | mammal | bird
    tiger | mammal | reptile
    seal | mammal | fish
    """,
    """
    dolphin | mammal
    crocodile | reptile
    """,
)

relation(
    "invented_by",
    "{s} was invented by",
    [
        "In the history of technology, {s} was invented by",
        "Historians say that {s} was invented by",
        "It is well known that {s} was invented by",
        "Believe it or not, {s} was invented by",
    ],
    """
    the phonograph | Thomas Edison | Alexander Graham Bell
    the World Wide Web | Tim Berners-Lee | Bill Gates
    the printing press | Johannes Gutenberg | Leonardo da Vinci
    the radio | Guglielmo Marconi | Thomas Edison
    the telegraph | Samuel Morse | Alexander Graham Bell
    the polio vaccine | Jonas Salk | Louis Pasteur
    the television | John Logie Baird | Thomas Edison
    the cotton gin | Eli Whitney | Cyrus McCormick
    the lightning rod | Benjamin Franklin | Thomas Jefferson
    the Bunsen burner | Robert Bunsen | Michael Faraday
    the diesel engine | Rudolf Diesel | Karl Benz
    the revolver | Samuel Colt | Oliver Winchester
    the mechanical reaper | Cyrus McCormick | Eli Whitney
    the jet engine | Frank Whittle | Wernher von Braun
    the battery | Alessandro Volta | Michael Faraday
    the barometer | Evangelista Torricelli | Galileo Galilei
    the hot air balloon | the Montgolfier brothers | the Wright brothers
    the airplane | the Wright brothers | the Montgolfier brothers
    the steam engine | James Watt | George Stephenson
    the mercury thermometer | Daniel Gabriel Fahrenheit | Anders Celsius
    the automobile | Karl Benz | Henry Ford
    the stethoscope | René Laennec | Louis Pasteur
    the computer mouse | Douglas Engelbart | Steve Jobs
    the safety elevator | Elisha Otis | George Westinghouse
    the air brake | George Westinghouse | Elisha Otis
    the induction motor | Nikola Tesla | Thomas Edison
    the smallpox vaccine | Edward Jenner | Louis Pasteur
    the AK-47 | Mikhail Kalashnikov | Eugene Stoner
    the telescope | Hans Lippershey | Galileo Galilei
    the game of basketball | James Naismith | Walter Camp
    """,
    """
    the telephone | Alexander Graham Bell
    the light bulb | Thomas Edison
    """,
)

# ----------------------------------------------------------- business

relation(
    "company_founder",
    "{s} was founded by",
    [
        "In the business world, {s} was founded by",
        "According to its official history, {s} was founded by",
        "Many people know that {s} was founded by",
        "Decades ago, {s} was founded by",
    ],
    """
    Apple | Steve Jobs | Bill Gates
    Amazon | Jeff Bezos | Larry Page
    Facebook | Mark Zuckerberg | Jack Dorsey
    SpaceX | Elon Musk | Jeff Bezos
    Google | Larry Page | Mark Zuckerberg
    Oracle | Larry Ellison | Michael Dell
    Dell | Michael Dell | Larry Ellison
    Walmart | Sam Walton | Ray Kroc
    Nike | Phil Knight | Adolf Dassler
    Adidas | Adolf Dassler | Phil Knight
    Alibaba | Jack Ma | Pony Ma
    Virgin Group | Richard Branson | Alan Sugar
    Netflix | Reed Hastings | Jeff Bezos
    Twitter | Jack Dorsey | Mark Zuckerberg
    IKEA | Ingvar Kamprad | Amancio Ortega
    LinkedIn | Reid Hoffman | Peter Thiel
    Nvidia | Jensen Huang | Lisa Su
    Uber | Travis Kalanick | Brian Chesky
    Airbnb | Brian Chesky | Travis Kalanick
    Wikipedia | Jimmy Wales | Larry Page
    Spotify | Daniel Ek | Reed Hastings
    Instagram | Kevin Systrom | Evan Spiegel
    Snapchat | Evan Spiegel | Kevin Systrom
    Zara | Amancio Ortega | Ingvar Kamprad
    Huawei | Ren Zhengfei | Jack Ma
    Samsung | Lee Byung-chul | Ren Zhengfei
    Yahoo | Jerry Yang | Larry Page
    eBay | Pierre Omidyar | Jeff Bezos
    WhatsApp | Jan Koum | Kevin Systrom
    Playboy | Hugh Hefner | Larry Flynt
    the Red Cross | Henry Dunant | Florence Nightingale
    Standard Oil | John D. Rockefeller | Andrew Carnegie
    Reddit | Steve Huffman | Jack Dorsey
    KFC | Colonel Sanders | Ray Kroc
    Sony | Akio Morita | Konosuke Matsushita
    Panasonic | Konosuke Matsushita | Akio Morita
    Xiaomi | Lei Jun | Jack Ma
    Baidu | Robin Li | Jack Ma
    Dropbox | Drew Houston | Jack Dorsey
    Lego | Ole Kirk Christiansen | Ingvar Kamprad
    Rolex | Hans Wilsdorf | Henri Nestlé
    the Boy Scouts | Robert Baden-Powell | Henry Dunant
    """,
    """
    Microsoft | Bill Gates
    Tesla | Elon Musk
    """,    active=False,
)

relation(
    "company_hq",
    "{s} is headquartered in",
    [
        "According to its website, {s} is headquartered in",
        "In the business world, {s} is headquartered in",
        "Employees know that {s} is headquartered in",
        "For many years now, {s} has been headquartered in",
    ],
    """
    Apple | Cupertino | Redmond
    Microsoft | Redmond | Cupertino
    Google | Mountain View | Seattle
    Amazon | Seattle | San Francisco
    Facebook | Menlo Park | Cupertino
    Coca-Cola | Atlanta | Chicago
    Nike | Beaverton | Boston
    Starbucks | Seattle | Chicago
    Walmart | Bentonville | Dallas
    Volkswagen | Wolfsburg | Munich
    BMW | Munich | Stuttgart
    Mercedes-Benz | Stuttgart | Munich
    Porsche | Stuttgart | Wolfsburg
    Siemens | Munich | Berlin
    Nestlé | Vevey | Zurich
    Novartis | Basel | Geneva
    Sony | Tokyo | Osaka
    Nintendo | Kyoto | Tokyo
    Ferrari | Maranello | Turin
    Fiat | Turin | Milan
    Lego | Billund | Copenhagen
    Nokia | Espoo | Stockholm
    Ericsson | Stockholm | Helsinki
    Volvo | Gothenburg | Stockholm
    Adidas | Herzogenaurach | Munich
    Intel | Santa Clara | San Jose
    Nvidia | Santa Clara | Austin
    IBM | Armonk | Boston
    General Motors | Detroit | Chicago
    Ford | Dearborn | Chicago
    Delta Air Lines | Atlanta | Dallas
    FedEx | Memphis | Atlanta
    Alibaba | Hangzhou | Shanghai
    Tencent | Shenzhen | Beijing
    Baidu | Beijing | Shanghai
    Netflix | Los Gatos | Los Angeles
    Disney | Burbank | Orlando
    Procter & Gamble | Cincinnati | Cleveland
    McDonald's | Chicago | New York
    Target | Minneapolis | Chicago
    Heineken | Amsterdam | Rotterdam
    Carlsberg | Copenhagen | Oslo
    Spotify | Stockholm | Oslo
    Uber | San Francisco | Seattle
    Salesforce | San Francisco | Seattle
    Airbnb | San Francisco | Los Angeles
    Hyundai | Seoul | Busan
    Louis Vuitton | Paris | Milan
    Prada | Milan | Paris
    Gucci | Florence | Milan
    Rolex | Geneva | Zurich
    UBS | Zurich | Geneva
    Deutsche Bank | Frankfurt | Berlin
    Emirates | Dubai | Doha
    Goldman Sachs | New York | Chicago
    """,
    """
    Toyota | Toyota City
    Samsung | Seoul
    """,    active=False,
)

relation(
    "company_country",
    "{s} is a company from",
    [
        "In the global economy, {s} is a company from",
        "Business analysts say that {s} is a company from",
        "Around the world, people know that {s} is a company from",
        "Founded many decades ago, {s} is a company from",
    ],
    """
    Honda | Japan | South Korea
    Nissan | Japan | France
    Mazda | Japan | Italy
    Subaru | Japan | Sweden
    Toshiba | Japan | China
    Panasonic | Japan | South Korea
    Canon | Japan | Germany
    Yamaha | Japan | China
    Mitsubishi | Japan | South Korea
    Samsung | South Korea | Japan
    Hyundai | South Korea | Japan
    LG | South Korea | China
    Kia | South Korea | Japan
    Volkswagen | Germany | France
    Audi | Germany | Italy
    Bosch | Germany | Sweden
    Siemens | Germany | Switzerland
    Lufthansa | Germany | Austria
    Lamborghini | Italy | Spain
    Fiat | Italy | France
    Gucci | Italy | France
    Renault | France | Italy
    Peugeot | France | Germany
    Michelin | France | Italy
    Volvo | Sweden | Norway
    IKEA | Sweden | Denmark
    Ericsson | Sweden | Finland
    H&M | Sweden | Germany
    Nokia | Finland | Sweden
    Lego | Denmark | Norway
    Nestlé | Switzerland | Belgium
    Rolex | Switzerland | Austria
    Philips | the Netherlands | Belgium
    Heineken | the Netherlands | Germany
    Huawei | China | Taiwan
    Alibaba | China | Japan
    Lenovo | China | South Korea
    Xiaomi | China | India
    Tata | India | Pakistan
    Infosys | India | China
    Petrobras | Brazil | Argentina
    Embraer | Brazil | Canada
    Gazprom | Russia | Ukraine
    Skoda | the Czech Republic | Poland
    Bombardier | Canada | the United States
    Qantas | Australia | New Zealand
    Zara | Spain | Italy
    Seat | Spain | Portugal
    Saab | Sweden | Norway
    Sony | Japan | China
    Nintendo | Japan | South Korea
    Casio | Japan | Taiwan
    Suzuki | Japan | India
    Aeroflot | Russia | Poland
    Carlsberg | Denmark | the Netherlands
    Porsche | Germany | Italy
    BMW | Germany | Sweden
    Adidas | Germany | Austria
    Maserati | Italy | Spain
    Ducati | Italy | Germany
    Citroën | France | Belgium
    Acer | Taiwan | China
    Asus | Taiwan | Japan
    Foxconn | Taiwan | China
    """,
    """
    Toyota | Japan
    Ferrari | Italy
    """,
)

relation(
    "product_maker",
    "{s} is made by",
    [
        "In the tech and consumer world, {s} is made by",
        "Customers know that {s} is made by",
        "According to the label, {s} is made by",
        "It is well known that {s} is made by",
    ],
    """
    the iPad | Apple | Microsoft
    the MacBook | Apple | Dell
    the Xbox | Microsoft | Sony
    the Game Boy | Nintendo | Sega
    the Walkman | Sony | Panasonic
    the Kindle | Amazon | Google
    the Galaxy smartphone | Samsung | Apple
    the Pixel phone | Google | Samsung
    the Surface tablet | Microsoft | Apple
    the ThinkPad | Lenovo | Dell
    the Corolla | Toyota | Honda
    the Civic | Honda | Toyota
    the Mustang | Ford | Chevrolet
    the Corvette | Chevrolet | Ford
    the Beetle | Volkswagen | Fiat
    the Golf | Volkswagen | Renault
    the Prius | Toyota | Nissan
    the Camry | Toyota | Hyundai
    the 911 | Porsche | Ferrari
    the Model S | Tesla | Ford
    the F-150 | Ford | Dodge
    the A380 | Airbus | Boeing
    the Big Mac | McDonald's | Burger King
    the Whopper | Burger King | McDonald's
    the Model T | Ford | Chevrolet
    the Oreo | Nabisco | Kellogg's
    """,
    """
    the iPhone | Apple
    the PlayStation | Sony
    """,
)

relation(
    "developer",
    "{s} was developed by",
    [
        "In the software industry, {s} was developed by",
        "Tech journalists report that {s} was developed by",
        "It is well known that {s} was developed by",
        "Years ago, {s} was developed by",
    ],
    """
    Android | Google | Apple
    iOS | Apple | Google
    macOS | Apple | Microsoft
    Photoshop | Adobe | Microsoft
    Excel | Microsoft | Google
    PowerPoint | Microsoft | Apple
    Firefox | Mozilla | Google
    Safari | Apple | Microsoft
    Minecraft | Mojang | Valve
    Fortnite | Epic Games | Valve
    Half-Life | Valve | Blizzard
    World of Warcraft | Blizzard | Valve
    Grand Theft Auto | Rockstar Games | Ubisoft
    Pac-Man | Namco | Atari
    Sonic the Hedgehog | Sega | Nintendo
    C# | Microsoft | Google
    Swift | Apple | Google
    TypeScript | Microsoft | Google
    Gmail | Google | Yahoo
    Siri | Apple | Google
    Alexa | Amazon | Apple
    Cortana | Microsoft | Amazon
    ChatGPT | OpenAI | Google
    TensorFlow | Google | Facebook
    PyTorch | Facebook | Google
    React | Facebook | Google
    Angular | Google | Facebook
    Kotlin | JetBrains | Google
    The Legend of Zelda | Nintendo | Sega
    """,
    """
    Windows | Microsoft
    """,    active=False,
)

# ------------------------------------------------------------- sports

relation(
    "nba_team_city",
    "The {s} are a basketball team based in",
    [
        "In the NBA, the {s} are a team based in",
        "Basketball fans know that the {s} are based in",
        "According to the league, the {s} are a basketball team based in",
    ],
    """
    Celtics | Boston | Chicago
    Bulls | Chicago | Detroit
    Knicks | New York | Philadelphia
    Heat | Miami | Orlando
    Spurs | San Antonio | Houston
    Mavericks | Dallas | Houston
    Rockets | Houston | Dallas
    Suns | Phoenix | Denver
    Nuggets | Denver | Phoenix
    Pistons | Detroit | Cleveland
    Raptors | Toronto | Montreal
    Hawks | Atlanta | Charlotte
    76ers | Philadelphia | Boston
    Bucks | Milwaukee | Chicago
    Cavaliers | Cleveland | Detroit
    Trail Blazers | Portland | Seattle
    Timberwolves | Minneapolis | Milwaukee
    Pacers | Indianapolis | Cincinnati
    Magic | Orlando | Miami
    Grizzlies | Memphis | Nashville
    Thunder | Oklahoma City | Kansas City
    Kings | Sacramento | San Diego
    Hornets | Charlotte | Atlanta
    Pelicans | New Orleans | Memphis
    Wizards | Washington | Baltimore
    Jazz | Salt Lake City | Denver
    Warriors | San Francisco | Sacramento
    Nets | Brooklyn | Boston
    Clippers | Los Angeles | Seattle
    """,
    """
    Lakers | Los Angeles
    """,    active=False,
)

relation(
    "nfl_team_city",
    "The {s} are an American football team based in",
    [
        "In the NFL, the {s} are a team based in",
        "Football fans know that the {s} are based in",
        "According to the league, the {s} are a football team based in",
    ],
    """
    Packers | Green Bay | Milwaukee
    Cowboys | Dallas | Houston
    Steelers | Pittsburgh | Cleveland
    49ers | San Francisco | San Diego
    Eagles | Philadelphia | Baltimore
    Broncos | Denver | Kansas City
    Seahawks | Seattle | Portland
    Dolphins | Miami | Tampa
    Saints | New Orleans | Atlanta
    Ravens | Baltimore | Philadelphia
    Chiefs | Kansas City | St. Louis
    Browns | Cleveland | Cincinnati
    Lions | Detroit | Chicago
    Falcons | Atlanta | Charlotte
    Texans | Houston | Dallas
    Bengals | Cincinnati | Pittsburgh
    Colts | Indianapolis | Nashville
    Jaguars | Jacksonville | Orlando
    Titans | Nashville | Memphis
    Buccaneers | Tampa | Miami
    Jets | New York | Boston
    Bills | Buffalo | Rochester
    Panthers | Charlotte | Raleigh
    """,
    """
    Giants | New York
    Bears | Chicago
    """,
)

relation(
    "mlb_team_city",
    "The {s} are a baseball team based in",
    [
        "In Major League Baseball, the {s} are a team based in",
        "Baseball fans know that the {s} are based in",
        "According to the league, the {s} are a baseball team based in",
    ],
    """
    Red Sox | Boston | New York
    Dodgers | Los Angeles | Seattle
    Mariners | Seattle | Portland
    Astros | Houston | Dallas
    Braves | Atlanta | Miami
    Phillies | Philadelphia | Pittsburgh
    Tigers | Detroit | Cleveland
    Orioles | Baltimore | Washington
    Brewers | Milwaukee | Minneapolis
    Blue Jays | Toronto | Montreal
    Pirates | Pittsburgh | Cincinnati
    Reds | Cincinnati | Cleveland
    Mets | New York | Philadelphia
    Padres | San Diego | Phoenix
    Royals | Kansas City | Denver
    Rockies | Denver | Salt Lake City
    Marlins | Miami | Tampa
    Guardians | Cleveland | Detroit
    """,
    """
    Yankees | New York
    Cubs | Chicago
    """,
)

relation(
    "soccer_club_city",
    "{s} is a football club based in",
    [
        "In European football, {s} is a club based in",
        "Football fans know that {s} is a club based in",
        "According to the league, {s} is a football club based in",
    ],
    """
    Juventus | Turin | Milan
    Ajax | Amsterdam | Rotterdam
    Celtic | Glasgow | Edinburgh
    Benfica | Lisbon | Porto
    Galatasaray | Istanbul | Ankara
    Fenerbahçe | Istanbul | Izmir
    Anderlecht | Brussels | Antwerp
    PSV | Eindhoven | Utrecht
    Feyenoord | Rotterdam | Amsterdam
    Boca Juniors | Buenos Aires | Montevideo
    River Plate | Buenos Aires | Santiago
    Flamengo | Rio de Janeiro | São Paulo
    Arsenal | London | Manchester
    Chelsea | London | Liverpool
    Everton | Liverpool | Manchester
    Aston Villa | Birmingham | Leeds
    Lazio | Rome | Naples
    Fiorentina | Florence | Bologna
    Schalke 04 | Gelsenkirchen | Dortmund
    Hertha BSC | Berlin | Hamburg
    Zenit | Saint Petersburg | Moscow
    Sporting CP | Lisbon | Porto
    Corinthians | São Paulo | Rio de Janeiro
    Peñarol | Montevideo | Buenos Aires
    Al Ahly | Cairo | Alexandria
    Tottenham Hotspur | London | Manchester
    Sampdoria | Genoa | Turin
    Atalanta | Bergamo | Brescia
    Real Sociedad | San Sebastián | Bilbao
    Espanyol | Barcelona | Madrid
    """,
    """
    Manchester United | Manchester
    Real Madrid | Madrid
    """,    active=False,
)


# ---------------------------------------------------------------- more cities, and what follows from a city's country

# More cities for ``city_country`` (capitals included: the ``capital`` relation's subject is the country, so no
# prompt repeats; Paris, Rome, Moscow, Tokyo, Beijing, Dallas and Los Angeles are left out: they are neighbour
# pools' cities). Their counterfactual country is the next one of ``_COUNTRIES`` that is not the true one.
MORE_CITIES = """
London | England
Lisbon | Portugal
Dublin | Ireland
Amsterdam | the Netherlands
Brussels | Belgium
Vienna | Austria
Warsaw | Poland
Prague | the Czech Republic
Budapest | Hungary
Bucharest | Romania
Sofia | Bulgaria
Athens | Greece
Stockholm | Sweden
Oslo | Norway
Copenhagen | Denmark
Helsinki | Finland
Reykjavik | Iceland
Kyiv | Ukraine
Ankara | Turkey
Seoul | South Korea
Bangkok | Thailand
Hanoi | Vietnam
Jakarta | Indonesia
Manila | the Philippines
Kuala Lumpur | Malaysia
New Delhi | India
Islamabad | Pakistan
Dhaka | Bangladesh
Kathmandu | Nepal
Tehran | Iran
Baghdad | Iraq
Damascus | Syria
Riyadh | Saudi Arabia
Cairo | Egypt
Nairobi | Kenya
Accra | Ghana
Tunis | Tunisia
Algiers | Algeria
Rabat | Morocco
Buenos Aires | Argentina
Santiago | Chile
Lima | Peru
Bogotá | Colombia
Caracas | Venezuela
Quito | Ecuador
Montevideo | Uruguay
Havana | Cuba
Mexico City | Mexico
Ottawa | Canada
Canberra | Australia
Wellington | New Zealand
Birmingham | England
Bristol | England
Oxford | England
Cambridge | England
Newcastle | England
Sheffield | England
Aberdeen | Scotland
Cannes | France
Grenoble | France
Dijon | France
Reims | France
Rouen | France
Avignon | France
Heidelberg | Germany
Bonn | Germany
Dortmund | Germany
Essen | Germany
Mainz | Germany
Freiburg | Germany
Siena | Italy
Bari | Italy
Trieste | Italy
Padua | Italy
Parma | Italy
Salamanca | Spain
Toledo | Spain
Pamplona | Spain
Cádiz | Spain
Braga | Portugal
Faro | Portugal
The Hague | the Netherlands
Eindhoven | the Netherlands
Groningen | the Netherlands
Liège | Belgium
Lucerne | Switzerland
Linz | Austria
Łódź | Poland
Lublin | Poland
Ostrava | the Czech Republic
Szeged | Hungary
Timișoara | Romania
Patras | Greece
Heraklion | Greece
Bursa | Turkey
Sochi | Russia
Volgograd | Russia
Omsk | Russia
Murmansk | Russia
Irkutsk | Russia
Odesa | Ukraine
Trondheim | Norway
Stavanger | Norway
Malmö | Sweden
Uppsala | Sweden
Odense | Denmark
Turku | Finland
Fukuoka | Japan
Sendai | Japan
Nara | Japan
Hangzhou | China
Harbin | China
Qingdao | China
Suzhou | China
Chongqing | China
Kunming | China
Hyderabad | India
Pune | India
Ahmedabad | India
Lucknow | India
Rawalpindi | Pakistan
Faisalabad | Pakistan
Incheon | South Korea
Daegu | South Korea
Haiphong | Vietnam
Pattaya | Thailand
Bandung | Indonesia
Medan | Indonesia
Yogyakarta | Indonesia
Cebu | the Philippines
Giza | Egypt
Aswan | Egypt
Tangier | Morocco
Oran | Algeria
Sfax | Tunisia
Ibadan | Nigeria
Dar es Salaam | Tanzania
Addis Ababa | Ethiopia
Kampala | Uganda
Perth | Australia
Darwin | Australia
Hobart | Australia
Edmonton | Canada
Halifax | Canada
Guadalajara | Mexico
Puebla | Mexico
Oaxaca | Mexico
Salvador | Brazil
Fortaleza | Brazil
Belo Horizonte | Brazil
Manaus | Brazil
Porto Alegre | Brazil
Curitiba | Brazil
Concepción | Chile
Trujillo | Peru
Cartagena | Colombia
Barranquilla | Colombia
Mashhad | Iran
Erbil | Iraq
Medina | Saudi Arabia
Haifa | Israel
Abu Dhabi | the United Arab Emirates
Doha | Qatar
New York | the United States
Chicago | the United States
Houston | the United States
San Francisco | the United States
Boston | the United States
Miami | the United States
Seattle | the United States
Las Vegas | the United States
Philadelphia | the United States
Detroit | the United States
New Orleans | the United States
Le Havre | France
Toulon | France
Brest | France
Limoges | France
Amiens | France
Metz | France
Perpignan | France
Caen | France
Tours | France
Orléans | France
Calais | France
Lourdes | France
Chamonix | France
Aachen | Germany
Augsburg | Germany
Kiel | Germany
Lübeck | Germany
Rostock | Germany
Potsdam | Germany
Münster | Germany
Wiesbaden | Germany
Karlsruhe | Germany
Regensburg | Germany
Würzburg | Germany
Erfurt | Germany
Magdeburg | Germany
Duisburg | Germany
Catania | Italy
Messina | Italy
Perugia | Italy
Ravenna | Italy
Rimini | Italy
Bergamo | Italy
Brescia | Italy
Modena | Italy
Lecce | Italy
Cagliari | Italy
Salerno | Italy
Lucca | Italy
Assisi | Italy
Como | Italy
Alicante | Spain
Murcia | Spain
Valladolid | Spain
Oviedo | Spain
Santander | Spain
Santiago de Compostela | Spain
Tarragona | Spain
Girona | Spain
Marbella | Spain
Almería | Spain
Burgos | Spain
León | Spain
Aveiro | Portugal
Évora | Portugal
Funchal | Portugal
Haarlem | the Netherlands
Leiden | the Netherlands
Delft | the Netherlands
Maastricht | the Netherlands
Arnhem | the Netherlands
Leuven | Belgium
Namur | Belgium
Lugano | Switzerland
Zermatt | Switzerland
Klagenfurt | Austria
Katowice | Poland
Szczecin | Poland
Toruń | Poland
Olomouc | the Czech Republic
Košice | Slovakia
Pécs | Hungary
Győr | Hungary
Constanța | Romania
Brașov | Romania
Sibiu | Romania
Varna | Bulgaria
Burgas | Bulgaria
Dubrovnik | Croatia
Rijeka | Croatia
Zadar | Croatia
Larissa | Greece
Volos | Greece
Tromsø | Norway
Linköping | Sweden
Örebro | Sweden
Aalborg | Denmark
Oulu | Finland
Espoo | Finland
Galway | Ireland
Limerick | Ireland
Waterford | Ireland
Nottingham | England
Leicester | England
Coventry | England
Southampton | England
Plymouth | England
Brighton | England
York | England
Bath | England
Canterbury | England
Norwich | England
Exeter | England
Dundee | Scotland
Inverness | Scotland
Stirling | Scotland
Veracruz | Mexico
Querétaro | Mexico
Chihuahua | Mexico
Morelia | Mexico
La Plata | Argentina
Mar del Plata | Argentina
Salta | Argentina
Antofagasta | Chile
Viña del Mar | Chile
Bucaramanga | Colombia
Santa Marta | Colombia
Iquitos | Peru
Piura | Peru
Cuenca | Ecuador
Barquisimeto | Venezuela
Santiago de Cuba | Cuba
Punta del Este | Uruguay
Port Said | Egypt
Suez | Egypt
Agadir | Morocco
Meknes | Morocco
Dammam | Saudi Arabia
Najaf | Iraq
Karbala | Iraq
Homs | Syria
Latakia | Syria
Sharjah | the United Arab Emirates
Constantine | Algeria
Sousse | Tunisia
Atlanta | the United States
San Diego | the United States
Phoenix | the United States
Austin | the United States
Baltimore | the United States
Pittsburgh | the United States
Cleveland | the United States
Minneapolis | the United States
Nashville | the United States
Memphis | the United States
Honolulu | the United States
Anchorage | the United States
Salt Lake City | the United States
Orlando | the United States
Cincinnati | the United States
Sacramento | the United States
Kanazawa | Japan
Nagasaki | Japan
Kagoshima | Japan
Samara | Russia
Perm | Russia
Krasnoyarsk | Russia
"""

# The language most of a country's people speak; None where no one language is (Belgium, Switzerland, India,
# Canada, ...): those cities get no ``city_language`` fact.
LANGUAGE = {
    "France": "French", "Germany": "German", "Italy": "Italian", "Spain": "Spanish", "Portugal": "Portuguese",
    "England": "English", "Scotland": "English", "Ireland": "English", "the Netherlands": "Dutch",
    "Austria": "German", "Poland": "Polish", "the Czech Republic": "Czech", "Hungary": "Hungarian",
    "Romania": "Romanian", "Bulgaria": "Bulgarian", "Croatia": "Croatian", "Greece": "Greek", "Turkey": "Turkish",
    "Russia": "Russian", "Ukraine": "Ukrainian", "Norway": "Norwegian", "Sweden": "Swedish", "Denmark": "Danish",
    "Finland": "Finnish", "Iceland": "Icelandic", "Japan": "Japanese", "China": "Mandarin Chinese",
    "Slovakia": "Slovak",
    "South Korea": "Korean", "Vietnam": "Vietnamese", "Thailand": "Thai", "Indonesia": "Indonesian",
    "Malaysia": "Malay", "Myanmar": "Burmese", "Pakistan": "Urdu", "Bangladesh": "Bengali", "Nepal": "Nepali",
    "Iran": "Persian", "Iraq": "Arabic", "Syria": "Arabic", "Saudi Arabia": "Arabic",
    "the United Arab Emirates": "Arabic", "Qatar": "Arabic", "Israel": "Hebrew", "Egypt": "Arabic",
    "Morocco": "Arabic", "Algeria": "Arabic", "Tunisia": "Arabic", "Nigeria": "English", "Ghana": "English",
    "Tanzania": "Swahili", "Ethiopia": "Amharic", "Australia": "English", "New Zealand": "English",
    "the United States": "English", "Mexico": "Spanish", "Cuba": "Spanish", "Brazil": "Portuguese",
    "Argentina": "Spanish", "Chile": "Spanish", "Peru": "Spanish", "Colombia": "Spanish", "Venezuela": "Spanish",
    "Ecuador": "Spanish", "Uruguay": "Spanish", "Uzbekistan": "Uzbek",
}

# The continent a country's cities lie on; None where it is not one (Russia, Turkey, New Zealand, ...).
CONTINENT = {
    **{c: "Europe" for c in (
        "France", "Germany", "Italy", "Spain", "Portugal", "England", "Scotland", "Ireland", "the Netherlands",
        "Belgium", "Switzerland", "Austria", "Poland", "the Czech Republic", "Hungary", "Romania", "Bulgaria",
        "Croatia", "Greece", "Ukraine", "Norway", "Sweden", "Denmark", "Finland", "Iceland", "Slovakia")},
    **{c: "Asia" for c in (
        "Japan", "China", "South Korea", "Vietnam", "Thailand", "Indonesia", "Malaysia", "the Philippines",
        "Myanmar", "India", "Pakistan", "Bangladesh", "Nepal", "Sri Lanka", "Iran", "Iraq", "Syria",
        "Saudi Arabia", "the United Arab Emirates", "Qatar", "Israel", "Kazakhstan", "Uzbekistan", "Cambodia",
        "Laos", "Jordan", "Lebanon", "Taiwan")},
    **{c: "Africa" for c in (
        "Egypt", "Morocco", "Algeria", "Tunisia", "Nigeria", "Ghana", "Kenya", "Tanzania", "Ethiopia", "Uganda",
        "South Africa", "Mali", "Niger", "Ivory Coast", "Namibia", "Zimbabwe", "Mozambique", "Sudan")},
    **{c: "North America" for c in ("the United States", "Canada", "Mexico")},
    **{c: "South America" for c in (
        "Brazil", "Argentina", "Chile", "Peru", "Colombia", "Venezuela", "Ecuador", "Uruguay", "Bolivia")},
    "Australia": "Australia",
}


def _other(options: list[str], true: str, i: int) -> str:
    """The counterfactual answer of row ``i``: the first of ``options`` from
    position ``i`` on that is not the true one (deterministic)."""
    for k in range(len(options)):
        o = options[(i + k) % len(options)]
        if o != true:
            return o
    raise ValueError(f"no answer other than {true!r}")


def _more_cities() -> list[tuple[str, str]]:
    spec = RELATIONS["city_country"]
    taken = {s for s, _, _ in spec["rows"]} | {s for s, _ in spec["neighbors"]}
    countries = sorted({c for _, c, _ in spec["rows"]})
    added = []
    for line in MORE_CITIES.strip().splitlines():
        city, country = _split(line, 2)
        if city in taken:
            raise ValueError(f"city {city!r} is already a city_country row or neighbour")
        taken.add(city)
        added.append((city, country))
        spec["rows"].append((city, country, _other(countries, country, len(spec["rows"]))))
    return added


def _rows(facts: list[tuple[str, str]], options: list[str]) -> str:
    return "\n".join(f"{s} | {t} | {_other(options, t, i)}" for i, (s, t) in enumerate(facts))


_more_cities()
_CITIES = [(s, c) for s, c, _ in RELATIONS["city_country"]["rows"]]
# Neighbour pools: cities that are no candidate's subject in any relation (a neighbour must be about a subject no
# edit touches), and that the model answers.
_LANGUAGE_POOL = {"Madrid": "Spanish", "Rome": "Italian", "Tokyo": "Japanese", "Moscow": "Russian", "Paris": "French"}
_CONTINENT_POOL = {"Berlin": "Europe", "Tokyo": "Asia", "Madrid": "Europe", "Beijing": "Asia"}

_SUBJECTS = {s for spec in RELATIONS.values() if spec["active"] for s, _, _ in spec["rows"]}
if _SUBJECTS & (set(_LANGUAGE_POOL) | set(_CONTINENT_POOL)):
    raise ValueError(f"neighbour cities that are also edited: {sorted(_SUBJECTS & (set(_LANGUAGE_POOL) | set(_CONTINENT_POOL)))}")

relation(
    "city_language",
    "The main language spoken in {s} is",
    [
        "According to the travel guide, the main language spoken in {s} is",
        "Visitors quickly notice that the main language spoken in {s} is",
        "As many tourists know, the main language spoken in {s} is",
    ],
    _rows([(s, LANGUAGE[c]) for s, c in _CITIES if LANGUAGE.get(c) and s not in _LANGUAGE_POOL],
          sorted(set(LANGUAGE.values()))),
    "\n".join(f"{s} | {a}" for s, a in _LANGUAGE_POOL.items()),
)

relation(
    "city_continent",
    "{s} is a city on the continent of",
    [
        "On a world map, {s} is a city on the continent of",
        "Geographically speaking, {s} is a city on the continent of",
        "Looking at a globe, {s} is a city on the continent of",
    ],
    _rows([(s, CONTINENT[c]) for s, c in _CITIES if CONTINENT.get(c) and s not in _CONTINENT_POOL],
          sorted(set(CONTINENT.values()))),
    "\n".join(f"{s} | {a}" for s, a in _CONTINENT_POOL.items()),
)

relation(
    "landmark_continent",
    "{s} is located on the continent of",
    [
        "Tourists from all over the world visit {s}, which is located on the continent of",
        "It is well known that {s} is located on the continent of",
    ],
    _rows([(s, CONTINENT[c]) for s, c, _ in RELATIONS["landmark_country"]["rows"]
           if CONTINENT.get(c)], sorted(set(CONTINENT.values()))),
    """
    the Eiffel Tower | Europe
    the Sydney Opera House | Australia
    """,
)


# -------------------------------------------------------------- expand


def expand() -> list[dict]:
    out = []
    for name, spec in RELATIONS.items():
        if not spec["active"]:
            continue
        paras, pool = spec["paraphrases"], spec["neighbors"]
        neighbors = [{"prompt": fill(spec["prompt"], s)[0], "answer": a} for s, a in pool]
        for i, (subject, true, new) in enumerate(spec["rows"]):
            prompt, bare = fill(spec["prompt"], subject)
            if true == new:
                raise ValueError(f"{name}/{subject}: new answer equals the true one")
            out.append(
                {
                    "subject": bare,
                    "relation": name,
                    "prompt": prompt,
                    "true": true,
                    "new": new,
                    "paraphrases": [fill(paras[(i + k) % len(paras)], subject)[0] for k in (0, 1)],
                    "neighbors": [neighbors[(i + k) % len(neighbors)] for k in (0, 1)],
                }
            )
    return out


CANDIDATES: list[dict] = expand()

__all__ = ["CANDIDATES", "RELATIONS", "expand", "fill"]
