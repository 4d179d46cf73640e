"""Synthetic Common Voice, Mandarin Chinese (zh-CN).

Layout (as one language of the real corpus)::

    cv-corpus-zh-CN/
        clips/common_voice_zh-CN_<number>.mp3
        train.tsv dev.tsv test.tsv validated.tsv
            client_id path sentence up_votes down_votes age gender accents
            locale segment

``client_id`` is 128 lowercase hex characters per speaker and ``path`` the
clip's file name; ``validated.tsv`` is the union of the three splits, whose
speakers are disjoint. Sentences of 6-20 hanzi are composed from an
embedded vocabulary of common words by a few sentence patterns and read by
espeak-ng's Mandarin voice.
"""
from dataclasses import replace

from .core import Recording, rng_for, summarise, write_text
from .ids import csv_lines, hex_string, pick, split_counts, unique_values
from .voices import make_speakers

PEOPLE = ("我 你 他 她 我们 你们 他们 老师 学生 朋友 妈妈 爸爸 哥哥 姐姐 弟弟 妹妹 "
          "爷爷 奶奶 孩子 医生 同学 邻居 司机 经理 小王 小李 老张 大家").split()
TIMES = ("今天 明天 昨天 早上 晚上 中午 下午 现在 周末 每天 去年 明年 星期一 "
         "星期六 春天 冬天 刚才 以后").split()
PLACES = ("学校 家里 公园 北京 上海 商店 图书馆 医院 饭店 公司 火车站 机场 银行 "
          "超市 教室 厨房 花园 山上 河边 城里 海边 办公室 电影院 广州").split()
ACTIVITIES = ("看书 喝茶 吃饭 买水果 写信 学习中文 打电话 听音乐 做作业 开车 唱歌 "
              "跑步 工作 休息 看电影 洗衣服 打扫房间 做饭 买东西 等朋友 看报纸 画画 "
              "踢足球 打篮球 游泳 骑自行车 坐公交车 写汉字 读课文 聊天 喝咖啡 吃面条 "
              "包饺子 种花 照相 上网 散步 爬山 钓鱼 跳舞 练习说话 准备考试 开会 "
              "看病 寄包裹 买衣服 复习功课 弹钢琴 拍照片").split()
ADJECTIVES = ("高兴 忙 累 漂亮 好 快乐 安静 干净 舒服 便宜 贵 远 近 有意思 重要 "
              "容易 难 好吃 热闹 新鲜 方便 聪明 认真 年轻 健康 紧张").split()
DEGREES = "很 非常 真 特别 有点 比较 太".split()
WEATHER = "热 冷 好 暖和 凉快 不错".split()
THINGS = ("地方 房间 苹果 城市 问题 电影 饭店 公园 故事 菜 学校 衣服 手机 "
          "电脑 小说 歌 办法 工作 季节 茶").split()
MEASURES = {"书": "本", "电影": "部", "苹果": "个", "房间": "个", "城市": "个",
            "问题": "个", "故事": "个", "菜": "道", "衣服": "件", "手机": "部",
            "电脑": "台", "小说": "本", "歌": "首", "办法": "个", "地方": "个",
            "饭店": "家", "公园": "个", "学校": "所", "工作": "份", "季节": "个",
            "茶": "杯"}
PUNCTUATION = "。！？，"

# speakers: per split; utts: (min, max) clips per speaker.
# Ranges are lists, not tuples: a preset must equal its JSON copy in the
# corpus marker, or a finished corpus would be rebuilt on every run.
SIZES = {
    "tiny": {"speakers": {"train": 1, "dev": 1, "test": 1}, "utts": [1, 2]},
    "mini": {"speakers": {"train": 14, "dev": 3, "test": 3}, "utts": [9, 13]},
}
SPLITS = ("train", "dev", "test")
AGES = ("", "teens", "twenties", "twenties", "thirties", "fourties", "fifties", "sixties")
ACCENTS = ("", "", "", "出生地：11 北京市", "出生地：31 上海市", "出生地：44 广东省",
           "出生地：51 四川省")
HEADER = ["client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender",
          "accents", "locale", "segment"]


def _candidate(rng):
    """One sentence from a random pattern (length not yet checked)."""
    s, t, place, act = (pick(rng, PEOPLE), pick(rng, TIMES), pick(rng, PLACES),
                        pick(rng, ACTIVITIES))
    deg, adj, thing = pick(rng, DEGREES), pick(rng, ADJECTIVES), pick(rng, THINGS)
    pattern = int(rng.integers(11))
    if pattern == 0:
        return f"{s}{t}在{place}{act}。"
    if pattern == 1:
        return f"{t}{s}{deg}{adj}。"
    if pattern == 2:
        return f"{t}的天气{deg}{pick(rng, WEATHER)}。"
    if pattern == 3:
        return f"{s}想{t}去{place}{act}。"
    if pattern == 4:
        return f"{s}和{pick(rng, PEOPLE)}一起{act}。"
    if pattern == 5:
        return f"{s}常常在{place}{act}。"
    if pattern == 6:
        return f"这{MEASURES.get(thing, '个')}{thing}{deg}{adj}。"
    if pattern == 7:
        return f"{s}觉得那{MEASURES.get(thing, '个')}{thing}{deg}{adj}。"
    if pattern == 8:
        return f"请问，{place}在哪里？"
    if pattern == 9:
        return f"{s}{t}没有{act}，因为{deg}累了。"
    return f"{s}{pick(rng, ['喜欢', '不喜欢', '最喜欢'])}{act}！"


def hanzi_count(sentence):
    """Number of characters in ``sentence`` other than punctuation."""
    return sum(1 for ch in sentence if ch not in PUNCTUATION)


def make_sentence(rng, low=6, high=20):
    """A sentence of ``low``..``high`` hanzi (plus punctuation).

    >>> import numpy as np
    >>> s = make_sentence(np.random.default_rng(0))
    >>> 6 <= hanzi_count(s) <= 20 and s[-1] in PUNCTUATION
    True
    """
    while True:
        sentence = _candidate(rng)
        if low <= hanzi_count(sentence) <= high:
            return sentence


def characters():
    """The set of hanzi the sentence patterns can produce."""
    words = (PEOPLE + TIMES + PLACES + ACTIVITIES + ADJECTIVES + DEGREES + WEATHER
             + THINGS + list(MEASURES.values()) + ["在的天气想去和一起常常这觉得那请问哪里"
                                                 "没有因为累了喜欢不最个"])
    return {ch for word in words for ch in word if ch not in PUNCTUATION}


def build(root, seed, size, renderer):
    """Write ``cv-corpus-zh-CN/`` into ``root`` (the corpus folder).

    ``size`` is a ``SIZES`` preset. Returns the ``summarise`` statistics
    plus the number of clips of each split."""
    taken_ids, taken_numbers = set(), set()
    rows, recordings = {}, []
    for split in SPLITS:
        rng = rng_for(seed, "common_voice", "speakers", split)
        speakers = make_speakers(rng, size["speakers"][split], language="cmn",
                                 snr_db=(12.0, 35.0))
        ids = unique_values(rng, len(speakers), lambda r: hex_string(r, 128), taken_ids)
        rows[split] = []
        for spk, client_id in zip(speakers, ids):
            spk = replace(spk, speaker_id=client_id)
            srng = rng_for(seed, "common_voice", "clips", client_id)
            age, accent = pick(srng, AGES), pick(srng, ACCENTS)
            gender = "" if srng.random() < 0.1 else ("female" if spk.sex == "F" else "male")
            for _ in range(int(srng.integers(size["utts"][0], size["utts"][1] + 1))):
                number = unique_values(srng, 1,
                                       lambda r: str(int(r.integers(18000000, 40000000))),
                                       taken_numbers)[0]
                name = f"common_voice_zh-CN_{number}.mp3"
                sentence = make_sentence(srng)
                recordings.append(Recording(path=f"clips/{name}", text=sentence, speaker=spk))
                votes = int(srng.integers(2, 5))
                rows[split].append([client_id, name, sentence, votes,
                                    int(srng.integers(0, votes - 1)), age, gender, accent,
                                    "zh-CN", ""])
    durations = renderer.render(recordings, root, seed)
    for split in SPLITS:
        write_text(root / f"{split}.tsv", csv_lines([HEADER] + rows[split], delimiter="\t"))
    write_text(root / "validated.tsv",
               csv_lines([HEADER] + [r for s in SPLITS for r in rows[s]], delimiter="\t"))
    stats = summarise(durations, [r.speaker.speaker_id for r in recordings])
    stats["splits"] = {split: len(r) for split, r in rows.items()}
    return stats
