from monitor.text.pinyin import fuzzy_syllable, near_key, near_syllable, pinyin_key, split_syllable, syllables


def test_fuzzy_classes() -> None:
    assert fuzzy_syllable("zhi") == "zi"
    assert fuzzy_syllable("chuan") == "can"
    assert fuzzy_syllable("shi") == "si"
    assert fuzzy_syllable("jing") == "jin"
    assert fuzzy_syllable("sheng") == "sen"
    assert fuzzy_syllable("guan") == "gan"
    assert fuzzy_syllable("bao") == "bao"


def test_homophones_share_a_key() -> None:
    assert pinyin_key("传家宝") == pinyin_key("传家报")
    assert pinyin_key("升值") == pinyin_key("升职")
    assert pinyin_key("足金") == pinyin_key("祖经")  # z/zu, jin/jing
    assert pinyin_key("私聊") == pinyin_key("斯聊")
    assert pinyin_key("足金") != pinyin_key("足银")


def test_key_has_one_code_point_per_character() -> None:
    text = "24k金,加v"
    assert len(pinyin_key(text)) == len(text)
    assert pinyin_key(text)[:3] == "24k"


def test_syllables_are_toneless_and_folded() -> None:
    assert syllables("传家宝") == ["can", "jia", "bao"]


def test_near_key_folds_the_near_classes_on_top_of_the_fuzzy_ones() -> None:
    assert split_syllable("zuo") == ("z", "uo")
    assert split_syllable("er") == ("", "er")
    assert near_syllable("zuo") == near_syllable("zu")  # uo/u
    assert near_syllable("xue") == near_syllable("xie")  # ue/ie
    assert near_syllable("qian") == near_syllable("xian") == near_syllable("jian")  # j/q/x
    assert near_syllable("ba") != near_syllable("pa")
    assert pinyin_key("千足金") != pinyin_key("签做金")
    assert near_key("千足金") == near_key("签做金") == near_key("先祖精")
    assert len(near_key("24k金")) == 4
    # z/c/s and e/i fold only in the keys of long terms.
    assert near_key("私下交易") != near_key("自下交易")
    assert near_key("私下交易", long=True) == near_key("自下交易", long=True)
    assert near_key("治疗失眠", long=True) == near_key("这疗失眠", long=True)
