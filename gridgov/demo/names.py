"""Name material for the demo county: surnames, given-name characters, toponyms, phone prefixes.

Everything here is plain data. The generator draws from these tables with its own seeded
``numpy.random.Generator``, so nothing in this module holds random state.
"""

from __future__ import annotations

# Surname frequencies (per cent of the population), roughly the national 2020 census ranking.
# A few surnames that are especially common in southern Hunan (唐 蒋 邓 何 雷 欧阳 …) are boosted
# so the demo reads like a 永州/郴州 county rather than a national average.
SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 7.1), ("李", 7.0), ("张", 6.4), ("刘", 5.4), ("陈", 4.6),
    ("杨", 3.1), ("黄", 2.6), ("赵", 1.6), ("吴", 2.0), ("周", 2.4),
    ("徐", 1.3), ("孙", 1.0), ("马", 0.9), ("朱", 1.2), ("胡", 1.6),
    ("郭", 1.0), ("何", 1.8), ("林", 0.9), ("高", 0.9), ("罗", 1.5),
    ("郑", 0.8), ("梁", 0.8), ("谢", 1.0), ("宋", 0.7), ("唐", 2.4),
    ("许", 0.6), ("韩", 0.5), ("冯", 0.6), ("邓", 1.8), ("曹", 0.6),
    ("彭", 1.0), ("曾", 1.0), ("肖", 0.9), ("田", 0.6), ("董", 0.4),
    ("袁", 0.6), ("潘", 0.5), ("于", 0.3), ("蒋", 2.0), ("蔡", 0.5),
    ("余", 0.5), ("杜", 0.4), ("叶", 0.5), ("程", 0.4), ("苏", 0.4),
    ("魏", 0.4), ("吕", 0.3), ("丁", 0.4), ("任", 0.4), ("沈", 0.3),
    ("姚", 0.4), ("卢", 0.4), ("姜", 0.3), ("崔", 0.2), ("钟", 0.5),
    ("谭", 0.9), ("陆", 0.3), ("汪", 0.3), ("范", 0.3), ("金", 0.2),
    ("石", 0.4), ("廖", 0.7), ("贾", 0.2), ("夏", 0.4), ("韦", 0.2),
    ("付", 0.3), ("方", 0.3), ("白", 0.2), ("邹", 0.4), ("孟", 0.2),
    ("熊", 0.4), ("秦", 0.2), ("邱", 0.3), ("江", 0.3), ("尹", 0.3),
    ("薛", 0.2), ("闫", 0.1), ("段", 0.2), ("雷", 1.0), ("侯", 0.2),
    ("龙", 0.4), ("史", 0.2), ("陶", 0.3), ("黎", 0.3), ("贺", 0.4),
    ("顾", 0.1), ("毛", 0.3), ("郝", 0.1), ("龚", 0.3), ("邵", 0.3),
    ("万", 0.2), ("钱", 0.1), ("严", 0.2), ("覃", 0.1), ("武", 0.1),
    ("戴", 0.3), ("莫", 0.2), ("孔", 0.1), ("向", 0.3), ("汤", 0.3),
    ("欧阳", 0.6), ("盘", 0.2), ("奉", 0.2), ("胥", 0.05), ("宁", 0.2),
)  # fmt: skip

# Given-name characters. Older rural generations skew to the "traditional" pools, the young to
# the "modern" ones; the generator picks the pool by birth year.
MALE_TRADITIONAL = (
    "建国军华平明勇志文德福荣贵发成忠良兵生清春林海东强伟新顺富坤武永光庆才祥仁"
    "云山水长中民先金满有保和进炳贤松"
)
MALE_MODERN = "伟强俊杰浩宇轩涛鹏飞超斌辉峰磊鑫博凯睿晨航子然阳亮军毅锋宏瑞哲康"
FEMALE_TRADITIONAL = "秀英兰芳桂梅珍凤玉华琴莲菊娥翠香花云霞红春冬月美淑素彩银金爱群"
FEMALE_MODERN = "丽娟敏静婷洁慧晓丹媛雪娇琳倩颖欣怡思雨梦佳萱琪悦璐瑶薇莉蓉燕萍"

# Two-character toponym roots for townships (…镇 / …乡). Fictional combinations in the style
# of the hill country of southern Hunan.
TOWNSHIP_ROOTS: tuple[str, ...] = (
    "白沙", "清水", "石门", "桃花", "龙泉", "黄田", "柏家", "水口", "太平", "大坪",
    "梅溪", "湘源", "鹿峰", "仁和", "保安", "新圩", "禾亭", "冷水", "天堂", "九井",
    "清溪", "上关", "下洞", "枫木", "茶林", "竹山", "平田", "金盆", "五里", "高峰",
    "长乐", "东山", "西岭", "南岳", "北斗", "花桥", "马坪", "牛角", "凤凰", "云溪",
    "麻田", "杉木", "石燕", "官桥", "沙田", "塘底", "永安", "龙溪", "桐子", "岩口",
    "油湖", "板桥", "黄岭", "盘石", "荆竹", "鸡笼", "蓝山", "紫溪", "双江", "朝阳",
)  # fmt: skip

# Village names are prefix + suffix (+ 村); the suffixes (冲 坪 塘 岭 湾 铺 源 …) are the
# characteristic landform words of Hunan place names.
VILLAGE_PREFIXES = (
    "石龙杨黄枫茶竹松桐马牛凤鹿梅桃李柏樟杉白青红金银新老上下东西南北大小高长"
    "清平田沙岩洞水泉云花仙宝福兴乐安和"
)
VILLAGE_SUFFIXES = "塘冲坪岭湾铺源桥山头田江口洞坳家园溪湖坡垅背坝寨屋陂院井亭"

# Mobile number prefixes (three digits) with rough market shares, China Mobile heavy in rural
# areas. All match the spec pattern 1[3-9]x.
PHONE_PREFIXES: tuple[tuple[str, float], ...] = (
    ("134", 2), ("135", 4), ("136", 4), ("137", 4), ("138", 5), ("139", 6),
    ("147", 1), ("150", 3), ("151", 3), ("152", 3), ("157", 1), ("158", 3),
    ("159", 3), ("172", 1), ("178", 2), ("182", 3), ("183", 2), ("184", 1),
    ("187", 3), ("188", 2), ("195", 1), ("198", 2),
    ("130", 2), ("131", 1), ("132", 1), ("155", 1), ("156", 2), ("166", 1),
    ("175", 1), ("176", 1), ("185", 1), ("186", 2),
    ("133", 1), ("153", 1), ("173", 1), ("177", 1), ("180", 2), ("181", 1),
    ("189", 2), ("191", 1), ("199", 2),
)  # fmt: skip

# Kinds of 专属网格 (a school, clinic or enterprise carved out of a village); "{root}" is the
# village name without its trailing 村.
DEDICATED_GRID_NAMES: tuple[str, ...] = (
    "{root}小学专属网格",
    "{root}中心小学专属网格",
    "{root}学校专属网格",
    "{root}茶业有限公司专属网格",
    "{root}竹木加工厂专属网格",
    "{root}油茶专业合作社专属网格",
    "{root}敬老院专属网格",
)
