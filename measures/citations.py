"""The papers the built-in measures cite, each written once; a measure's ``source`` builds on them."""

JIANG_2020 = "Jiang et al., ICLR 2020, 'Fantastic Generalization Measures and Where to Find Them'"
NATEKAR_SHARMA = ("Natekar & Sharma, 'Representation Based Complexity Measures for Predicting Generalization "
                  "in Deep Learning', arXiv 2012.02775")
NATEKAR_CODE = "github.com/parthnatekar/pgdl"
LASSANCE = ("Lassance et al., 'Ranking Deep Learning Generalization using Label Variation in Latent "
            "Geometry Graphs', arXiv 2011.12737 (PGDL 3rd place; github.com/cadurosar/pgdl VPM_1)")
AITHAL = ("Aithal K, Kashyap & Subramanyam, 'Robustness to Augmentations as a Generalization metric', "
          "arXiv 2101.06459 (PGDL 2nd place; github.com/sumukhaithal6/pgdl)")
MOUTON_FRAGMENTATION = ("Mouton, Rabe, Haasbroek, Theunissen, Potgieter, Davel, 'Is network fragmentation a "
                        "useful complexity measure?', arXiv 2411.04695; triplet planes of Somepalli et al., CVPR 2022")
POTGIETER = "Potgieter, Mouton & Davel, arXiv 2501.14441"
HAASBROEK = "Haasbroek & Davel, SACAIR 2020"
DZIUGAITE_2020 = ("Dziugaite, Drouin, Neal, Rajkumar, Caballero, Wang, Mitliagkas & Roy, NeurIPS 2020, "
                  "'In search of robust measures of generalization'")
ROBUST_MEASURES_CODE = "github.com/nitarshan/robust-generalization-measures (data/generation/measures.py, get_all_measures)"
CHUANG_KV = ("Chuang, Mroueh, Greenewald, Torralba & Jegelka, 'Measuring Generalization with Optimal Transport', "
             "NeurIPS 2021, arXiv 2106.03314")
CHUANG_KV_CODE = "github.com/chingyaoc/kV-Margin"
