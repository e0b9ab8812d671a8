//! Signals in other languages: Latin-script languages as word patterns (accents already
//! folded away), other scripts as regexes on the lowercased `plain` view, and the joined
//! view of spelled-out letters.

use super::Kind::{
    InstructionOverride as Override, JailbreakPersona as Persona, PromptExtraction as Extract,
};
use super::{sig, Signal};

/// French, Spanish, German, Italian, Portuguese, Dutch, Polish, Turkish and shared stems
/// (word patterns).
pub const LATIN: &[Signal] = &[
    sig(Override, 0.85, "( ignore|ignorez|ignorer|oublie|oubliez|oublier | ne tiens pas compte de | fais abstraction de ) _{0,3} instruction|instructions|consigne|consignes|regles|directives|indications"),
    sig(Override, 0.85, "( ignora|ignore|ignoren|olvida|olvide|omite|descarta | no sigas ) _{0,3} instrucciones|reglas|indicaciones|directrices|normas"),
    sig(Override, 0.85, "( ignoriere|ignoriert|vergiss|vergesst|missachte | ignorieren sie | vergessen sie ) _{0,3} anweisung|anweisungen|systemanweisung|systemanweisungen|regeln|richtlinie|richtlinien|vorgabe|vorgaben|instruktionen|anordnungen|befehle|systemprompt"),
    sig(Override, 0.85, "ignora|dimentica|dimenticati|trascura _{0,3} istruzioni|regole|indicazioni|direttive"),
    sig(Override, 0.85, "ignore|ignora|esqueca|esquece|desconsidere _{0,3} instrucoes|regras|diretrizes|orientacoes"),
    sig(Override, 0.85, "negeer|vergeet _{0,3} instructies|regels|richtlijnen|opdrachten"),
    sig(Override, 0.85, "zignoruj|ignoruj|zapomnij _{0,3} instrukcj*|polecen*|zasad*|regul*"),
    sig(Override, 0.85, "onceki|tum|butun _? talimat* _? ( yok say | gormezden gel | unut )"),
    // Shared stems across European and other Latin-script languages (Swedish, Czech,
    // Romanian, Indonesian, …): "ignorera … instruktioner", "ignoruj … pokyny", "abaikan … instruksi".
    sig(Override, 0.7, "ignor*|abaikan|lupakan _{0,3} instruct*|instrukt*|instruks*|instrukc*|pokyn*|directive|directives|direktiv*|talimat*|arahan|perintah|aturan"),
    sig(Persona, 0.5, "( sans aucun|aucune? restriction|restrictions|limite|limites|filtre|filtres|regles|censure | tu n'as plus de regles|restrictions|limites | plus aucun|aucune regles|restrictions|limites )"),
    sig(Persona, 0.5, "sin ningun|ninguna|ninguno? restricciones|limites|filtros|reglas|censura"),
    sig(Persona, 0.5, "( ohne jegliche|irgendwelche? einschrankungen|beschrankungen|regeln|filter|zensur|grenzen | entwicklermodus )"),
    sig(Persona, 0.5, "( senza alcun|alcuna|alcuno? filtri|restrizioni|limiti|regole|censura | sem nenhuma? restricoes|limites|filtros|regras|censura | zonder enige? beperkingen|regels|filters|censuur )"),
    sig(Persona, 0.45, "( nao tem|tens|possui | no tienes|tiene | n'as|n'avais|n'avez pas|plus|aucun|aucune de? | har inga|ingen | nie masz | nemas | tidak punya|memiliki|ada ) _? diretrizes|regras|restricoes|limites|reglas|restricciones|regles|regle|restrictions|restriction|regler|begransningar|zasad|ograniczen|pravidla|omezeni|aturan|batasan"),
    sig(Extract, 0.75, "revele|montre|affiche|donne|dis _{0,2} ton|tes|votre|vos|le|les _? prompt|instructions|consignes systeme|cachees|cachee|secretes|secrete|initiales|initiale"),
    sig(Extract, 0.75, "muestra|muestrame|dime|revela|ensename|imprime _{0,3} ( prompt del sistema | instrucciones ocultas|secretas|iniciales | instrucciones del sistema )"),
    sig(Extract, 0.75, "zeig|zeige|zeigen|gib|nenne|verrate _{0,2} ( dein|deine|deinen | die versteckten|geheimen ) _? systemprompt|anweisungen|instruktionen"),
    sig(Extract, 0.75, "( mostra|mostrami|rivela|rivelami|dimmi _{0,3} prompt di+sistema|iniziale | revele|mostre|diga _{0,3} ( prompt do sistema | instrucoes ocultas ) | laat _{0,2} systeemprompt zien | pokaz _{0,2} prompt systemowy | sistem istem* goster|yaz|soyle )"),
    sig(Extract, 0.3, "( systemprompt|systemprompten|systeemprompt | prompt|promptul|prompts de|del|do|di? sistem* )"),
];

/// Non-Latin scripts, on the lowercased `plain` view.
pub const SCRIPTS: &[Signal] = &[
    // Russian
    sig(
        Override,
        0.85,
        r"(?:игнорируй|игнорируйте|проигнорируй|забудь|забудьте|отбрось|не\s+обращай\s+внимания\s+на)[^.!?\n]{0,40}?(?:инструкци|правил|указани|ограничени|директив)",
    ),
    sig(
        Persona,
        0.5,
        r"без\s+(?:каких-либо\s+|всяких\s+)?ограничений|нет\s+(?:никаких\s+|каких-либо\s+)?(?:ограничений|правил|фильтров)",
    ),
    sig(
        Persona,
        0.4,
        r"(?:представь|вообрази|притворись|сделай\s+вид)",
    ),
    sig(
        Extract,
        0.75,
        r"(?:покажи|выведи|раскрой|напиши|повтори|скажи)[^.!?\n]{0,30}?(?:системн\w*\s+(?:промпт|подсказк|инструкци|сообщени)|скрыт\w*\s+инструкци|сво[иё]\s+инструкци)",
    ),
    // Chinese
    sig(
        Override,
        0.85,
        r"(?:忽略|无视|忘记|忘掉|不要理会|不要遵守|抛开|忽视)[^。！？\n]{0,12}?(?:指令|指示|说明|规则|提示|设定|限制)",
    ),
    sig(
        Extract,
        0.75,
        r"(?:输出|告诉我|显示|展示|透露|打印|泄露|重复)[^。！？\n]{0,10}?(?:系统提示|系统指令|系统消息|提示词|初始指令|隐藏指令)",
    ),
    sig(
        Persona,
        0.5,
        r"没有(?:任何)?限制|不受(?:任何)?[^。，,\n]{0,6}?(?:限制|约束)|无限制",
    ),
    sig(Persona, 0.3, r"(?:从现在开始|从现在起)[^。\n]{0,6}?你是"),
    // Japanese
    sig(
        Override,
        0.85,
        r"(?:以前|これまで|前|上記|今まで|あなた)の(?:すべての|全ての)?(?:指示|命令|ルール|設定|制約)を(?:すべて|全て)?(?:無視|忘れ)",
    ),
    sig(
        Override,
        0.7,
        r"(?:ルール|指示|制約|制限)を(?:すべて|全て)?(?:無視|忘れ)",
    ),
    sig(Persona, 0.45, r"制限(?:なし|なく|のない)"),
    sig(
        Extract,
        0.75,
        r"(?:システム|隠された|秘密の)プロンプト[^。\n]{0,8}?(?:表示|教え|出力|見せ)",
    ),
    // Korean
    sig(
        Override,
        0.85,
        r"(?:이전|앞의|위의|기존|모든)(?:의)?\s*(?:모든\s*)?(?:지시|지침|명령|규칙|설정)[^.!?\n]{0,10}?무시",
    ),
    sig(Override, 0.7, r"(?:규칙|지시|지침|제한)[을를]?\s*무시"),
    sig(Persona, 0.45, r"제한(?:이)?\s*없"),
    sig(
        Extract,
        0.75,
        r"시스템\s*프롬프트[를을]?\s*(?:보여|출력|알려|공개)",
    ),
    // Arabic
    sig(
        Override,
        0.85,
        r"(?:تجاهل|انس|إنس)[^.!؟\n]{0,30}?(?:التعليمات|الأوامر|القواعد|الإرشادات)",
    ),
    sig(
        Extract,
        0.75,
        r"(?:اكشف|أظهر|اعرض|اطبع)[^.!؟\n]{0,30}?(?:موجه|تعليمات|رسالة)\s+النظام",
    ),
    // Hindi
    sig(
        Override,
        0.85,
        r"(?:निर्देशों|निर्देश|नियमों|नियम)[^।\n]{0,20}?(?:अनदेखा|नज़रअंदाज़|नजरअंदाज|भूल)",
    ),
    sig(Extract, 0.6, r"सिस्टम\s+प्रॉम्प्ट[^।\n]{0,10}?(?:दिखा|बता)"),
    // Vietnamese (its letters are outside the folded Latin ranges)
    sig(
        Override,
        0.85,
        r"(?:bỏ qua|phớt lờ|quên)[^.!?\n]{0,30}?(?:hướng dẫn|chỉ dẫn|chỉ thị|quy tắc)",
    ),
    sig(Extract, 0.6, r"(?:lời nhắc|chỉ dẫn) hệ thống"),
];

/// Spelled-out letters joined (`i g n o r e` → `ignore`), lowercase, no spaces.
pub const SQUASHED: &[Signal] = &[
    sig(
        Override,
        0.85,
        r"(?:ignore|disregard|forget|bypass|override)(?:all|the|your|any|previous|prior|above|of|my)*(?:instructions|rules|guidelines|prompts?|filters|restrictions|programming)",
    ),
    sig(
        Extract,
        0.75,
        r"(?:reveal|show|print|repeat|tell)(?:me)?(?:your|the)(?:system|hidden|secret|initial)?(?:prompt|instructions)",
    ),
    sig(Persona, 0.6, r"doanythingnow|developermode|jailbr(?:ea|o)k"),
];
